// The order confirmation sheet (the "order information confirmation request" of the flow):
// amount, card brand and masked number, description; confirm or reject.
Component({
  options: { styleIsolation: 'apply-shared' },
  properties: {
    /** The strings of the current locale. */
    t: { type: Object, value: {} },
    /** Formatted amount, e.g. '¥19.99'. */
    amountText: { type: String, value: '' },
    /** The merchant's description of the order. Default ''. */
    description: { type: String, value: '' },
    brandName: { type: String, value: '' },
    /** First 6 and last 4 digits at most. */
    masked: { type: String, value: '' },
    maskedLabel: { type: String, value: '' },
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
  },
});

export {};
