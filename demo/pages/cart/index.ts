// A merchant's cart page: the total in minor units goes to the plugin as `amount`; the outcome
// comes back through the component's events.
interface Item {
  name: string;
  qty: number;
  unit: number;
}

const ITEMS: Item[] = [
  { name: '拿铁 Latte', qty: 2, unit: 850 },
  { name: '可颂 Croissant', qty: 1, unit: 299 },
];

const yuan = (minor: number) =>
  `¥${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;

Component({
  data: {
    items: ITEMS.map((i) => ({ name: i.name, qty: i.qty, priceText: yuan(i.qty * i.unit) })),
    total: ITEMS.reduce((sum, i) => sum + i.qty * i.unit, 0),
    totalText: yuan(ITEMS.reduce((sum, i) => sum + i.qty * i.unit, 0)),
    description: ITEMS.map((i) => `${i.name} × ${i.qty}`).join('，'),
    // The sandbox's cards (PROTOCOL §8), for whoever tries the demo, WeChat's reviewers included:
    // typed with 「手动输入卡号」 or shown as a QR code on another screen.
    cards: [
      { number: '6222 0210 0000 0000 009', outcome: '成功 Approved (UnionPay)' },
      { number: '4242 4242 4242 4242', outcome: '成功 Approved (Visa)' },
      { number: '4000 0000 0000 0002', outcome: '拒绝 Declined' },
      { number: '4000 0000 0000 9995', outcome: '余额不足 Insufficient funds' },
    ],
    state: 'idle',
    outcome: '',
  },
  methods: {
    onState(e: WechatMiniprogram.CustomEvent<{ state: string }>) {
      this.setData({ state: e.detail.state });
    },
    onSuccess(
      e: WechatMiniprogram.CustomEvent<{ payment: { paymentId: string; charged: number } }>,
    ) {
      this.setData({
        outcome: `已支付 ${yuan(e.detail.payment.charged)}（${e.detail.payment.paymentId}）`,
      });
    },
    onFail(e: WechatMiniprogram.CustomEvent<{ error: { code: string } }>) {
      if (e.detail.error.code !== 'scan_cancelled')
        this.setData({ outcome: `未完成：${e.detail.error.code}` });
    },
    onCancel() {
      this.setData({ outcome: '已取消' });
    },
  },
});

export {};
