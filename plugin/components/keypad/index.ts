// The 6-digit password keypad: our own keys (no system keyboard), dots instead of digits. The
// digits live outside the render data (they never reach the view layer) and are updated at once
// on each tap, so fast taps are never lost while a render is pending; the sixth digit completes.
const LENGTH = 6;
const entries = new WeakMap<object, string>();

Component({
  properties: {
    /** Ignore taps (while a request is in flight). Default false. */
    disabled: { type: Boolean, value: false },
    /** Screen-reader text for the dots, with {n} for the count. Default '{n}/6'. */
    dotsTemplate: { type: String, value: '{n}/6' },
    /** Screen-reader label of the delete key. Default 'Delete'. */
    deleteLabel: { type: String, value: 'Delete' },
  },
  data: {
    keys: ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'blank', '0', 'del'],
    dots: [0, 1, 2, 3, 4, 5],
    filled: 0,
    dotsLabel: '',
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
      else if (/^[0-9]$/.test(key) && digits.length < LENGTH) digits += key;
      else return;
      if (digits.length === LENGTH) {
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
