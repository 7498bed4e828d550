// The order confirmation sheet (the "order information confirmation request" of the flow): the
// amount, what will be paid after the loyalty discount, the card as the shopper knows it, who is
// paid; confirm or reject.
Component({
  options: { styleIsolation: 'isolated' },
  properties: {
    /** The strings of the current locale. */
    t: { type: Object, value: {} },
    /** Formatted amount, e.g. '¥19.99'. */
    amountText: { type: String, value: '' },
    /** 「会员优惠 -¥1.13，实付 ¥55.67」, or ''. */
    previewText: { type: String, value: '' },
    /** The merchant's description of the order. Default ''. */
    description: { type: String, value: '' },
    /** The card as the shopper knows it: 「招商银行储蓄卡(0009)」. */
    cardText: { type: String, value: '' },
    /** Who is paid, from the platform's confirmation. Default ''. */
    merchantName: { type: String, value: '' },
    /** A request is in flight. Default false. */
    busy: { type: Boolean, value: false },
  },
  methods: {
    onConfirm() {
      if (!this.data.busy) this.triggerEvent('confirm', {});
    },
    onReject() {
      if (!this.data.busy) this.triggerEvent('reject', {});
    },
    /** The header's ×: the same as rejecting. */
    onClose() {
      if (!this.data.busy) this.triggerEvent('reject', {});
    },
    /** The mask takes no scroll: the page underneath stays where it was. */
    noop() {},
  },
});

export {};
