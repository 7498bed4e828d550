// The keypad of the sheets: our own keys (no system keyboard), boxes that fill with dots instead
// of digits. Six boxes for the payment password (the sixth digit completes), three or four for a
// card's security code (`length`). The digits live outside the render data (they never reach the
// view layer) and are updated at once on each tap, so fast taps are never lost while a render is
// pending.
const entries = new WeakMap<object, string>();

Component({
  properties: {
    /** How many digits: 6 for the password (default), 3 or 4 for a security code. */
    length: { type: Number, value: 6 },
    /** Ignore taps (while a request is in flight). Default false. */
    disabled: { type: Boolean, value: false },
    /** Screen-reader text for the boxes, with {n} for the count. Default '{n}/6'. */
    dotsTemplate: { type: String, value: '{n}/6' },
    /** Screen-reader label of the delete key. Default 'Delete'. */
    deleteLabel: { type: String, value: 'Delete' },
    /** Id of the boxes row, for merchants' tests. Default 'cardpay-boxes'. */
    boxesId: { type: String, value: 'cardpay-boxes' },
  },
  data: {
    keys: ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'blank', '0', 'del'],
    boxes: [0, 1, 2, 3, 4, 5],
    filled: 0,
    dotsLabel: '',
  },
  observers: {
    length(n: number) {
      this.setData({ boxes: Array.from({ length: n }, (_, i) => i) });
    },
  },
  lifetimes: {
    attached() {
      this.show('');
    },
  },
  methods: {
    onKey(event: WechatMiniprogram.TouchEvent) {
      if (this.data.disabled) return;
      const key = String(event.currentTarget.dataset.key);
      let digits = entries.get(this) ?? '';
      if (key === 'del') digits = digits.slice(0, -1);
      else if (/^[0-9]$/.test(key) && digits.length < this.data.length) digits += key;
      else return;
      this.triggerEvent('change', { value: digits });
      if (digits.length === this.data.length) {
        // The full entry goes out; the boxes empty for the next one.
        this.show('');
        this.triggerEvent('complete', { value: digits });
        return;
      }
      this.show(digits);
    },
    /** Empties the entry. */
    clear() {
      this.show('');
    },
    show(digits: string) {
      entries.set(this, digits);
      this.setData({
        filled: digits.length,
        dotsLabel: this.data.dotsTemplate.replace('{n}', String(digits.length)),
      });
    },
  },
});

export {};
