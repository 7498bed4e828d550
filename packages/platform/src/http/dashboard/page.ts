// The dashboard's pages are HTML made on the server: no script at all (the Content-Security-Policy
// allows none), nothing from another origin, forms for every change. This file holds what every
// page shares: escaping, the words in both languages, the layout and the style sheet.

/** Text made safe for HTML: what a merchant typed (an order id, a reason) is never markup. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escape(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A template whose interpolations are escaped, except `Html` values and lists of them. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  values.forEach((v, i) => {
    const part = Array.isArray(v)
      ? v.map((x) => (x instanceof Html ? x.text : escape(x))).join('')
      : v instanceof Html
        ? v.text
        : v === undefined || v === null || v === false
          ? ''
          : escape(v);
    out += part + strings[i + 1];
  });
  return new Html(out);
}

export type Lang = 'zh' | 'en';

const WORDS = {
  title: ['CardPay 商户后台', 'CardPay merchant dashboard'],
  signInTitle: ['登录商户后台', 'Sign in to the dashboard'],
  apiKey: ['商户 API 密钥', 'Merchant API key'],
  apiKeyHint: [
    '以 sk_ 开头，仅用于登录，不会显示在页面上',
    'Starts with sk_; used to sign in, never shown on a page',
  ],
  signIn: ['登录', 'Sign in'],
  signOut: ['退出登录', 'Sign out'],
  wrongKey: ['密钥不正确', 'That key is not right'],
  tooManySignIns: ['登录尝试过多，请一分钟后再试', 'Too many attempts; try again in a minute'],
  refused: [
    '请求已被拒绝（会话已过期或来源不符），请刷新后重试',
    'The request was refused (the session expired or it came from elsewhere); reload and try again',
  ],
  skip: ['跳至正文', 'Skip to the content'],
  orders: ['订单', 'Orders'],
  events: ['通知', 'Notifications'],
  statement: ['对账单', 'Statement'],
  figures: ['今日数据', 'Figures'],
  language: ['English', '中文'],
  status: ['状态', 'Status'],
  all: ['全部', 'All'],
  from: ['起始日期', 'From'],
  to: ['截止日期（不含）', 'To (not included)'],
  search: ['商户订单号', 'Merchant order id'],
  description: ['商品描述', 'Description'],
  filter: ['筛选', 'Filter'],
  next: ['下一页', 'Next page'],
  first: ['第一页', 'First page'],
  amount: ['金额', 'Amount'],
  created: ['创建时间', 'Created'],
  order: ['订单', 'Order'],
  noOrders: ['没有符合条件的订单', 'No orders match'],
  payment: ['支付', 'Payment'],
  charged: ['实付', 'Charged'],
  discount: ['优惠', 'Discount'],
  card: ['付款卡', 'Card'],
  refunds: ['退款', 'Refunds'],
  noRefunds: ['暂无退款', 'No refunds yet'],
  refund: ['退款', 'Refund'],
  refundable: ['可退金额', 'Refundable'],
  refundAmount: ['退款金额（元）', 'Amount to refund'],
  reason: ['退款原因（可选）', 'Reason (optional)'],
  review: ['下一步：确认', 'Next: confirm'],
  confirmRefund: ['确认退款', 'Confirm the refund'],
  confirmQuestion: [
    '确认退款 {amount} 给顾客？此操作不能撤销。',
    'Refund {amount} to the shopper? This cannot be undone.',
  ],
  cancel: ['取消', 'Cancel'],
  refunded: ['已退款', 'Refunded'],
  refundFailed: ['退款未成功', 'The refund did not go through'],
  badAmount: [
    '请输入大于 0 的金额，最多两位小数',
    'Enter an amount above 0, with at most two decimals',
  ],
  back: ['返回', 'Back'],
  orderEvents: ['此订单的通知', 'This order’s notifications'],
  type: ['类型', 'Type'],
  delivery: ['投递', 'Delivery'],
  deliveries: ['投递记录（最近 20 次）', 'Delivery attempts (last 20)'],
  redeliver: ['重新投递', 'Deliver again'],
  redelivered: ['已加入投递队列', 'Queued for delivery'],
  noWebhook: ['未配置通知地址，无法投递', 'No webhook is configured: nothing to deliver to'],
  noEvents: ['暂无通知', 'No notifications yet'],
  at: ['时间', 'When'],
  httpStatus: ['HTTP 状态', 'HTTP status'],
  error: ['错误', 'Error'],
  duration: ['耗时', 'Took'],
  day: ['日期', 'Day'],
  show: ['查看', 'Show'],
  download: ['下载 CSV', 'Download CSV'],
  lines: ['明细', 'Lines'],
  total: ['合计', 'Total'],
  count: ['支付笔数', 'Payments'],
  succeeded: ['成功笔数', 'Succeeded'],
  volume: ['收款金额', 'Volume'],
  refundedTotal: ['退款金额', 'Refunded'],
  lastSevenDays: ['最近 7 天收款', 'Volume, last 7 days'],
  notFound: ['找不到该页面或订单', 'No such page or order'],
  somethingWrong: ['出了点问题，请稍后再试', 'Something went wrong; please try again'],
  timeZone: ['时区', 'Time zone'],
} satisfies Record<string, readonly [string, string]>;

export type Words = { [K in keyof typeof WORDS]: string };

const cache: Partial<Record<Lang, Words>> = {};
export function wordsFor(lang: Lang): Words {
  const i = lang === 'en' ? 1 : 0;
  return (cache[lang] ??= Object.fromEntries(
    Object.entries(WORDS).map(([k, v]) => [k, v[i]]),
  ) as Words);
}

const STATUSES: Record<string, readonly [string, string]> = {
  open: ['待支付', 'Open'],
  paid: ['已支付', 'Paid'],
  failed: ['失败', 'Failed'],
  partially_refunded: ['部分退款', 'Partially refunded'],
  refunded: ['已退款', 'Refunded'],
  succeeded: ['成功', 'Succeeded'],
  declined: ['被拒', 'Declined'],
  pending: ['处理中', 'Pending'],
  delivered: ['已送达', 'Delivered'],
  none: ['无通知地址', 'No webhook'],
};

const BRANDS: Record<string, readonly [string, string]> = {
  unionpay: ['银联', 'UnionPay'],
  visa: ['Visa', 'Visa'],
  mastercard: ['Mastercard', 'Mastercard'],
  amex: ['美国运通', 'American Express'],
  jcb: ['JCB', 'JCB'],
  discover: ['Discover', 'Discover'],
  diners: ['大来卡', 'Diners Club'],
};

/** A card brand in words. */
export function brandName(brand: string, lang: Lang): string {
  const words = BRANDS[brand];
  return words ? words[lang === 'en' ? 1 : 0] : brand;
}

/** A status in words, as a badge; unknown ones as they are. */
export function badge(status: string, lang: Lang): Html {
  const words = STATUSES[status];
  return html`<span class="badge badge--${status.replace(/[^a-z_]/g, '')}"
    >${words ? words[lang === 'en' ? 1 : 0] : status}</span
  >`;
}

/** A column: its heading, and `num` (amounts, counts: aligned right) or `muted` for its cells. */
export type Column = readonly [heading: string, kind?: 'num' | 'muted'];

/**
 * A table of `rows` (one cell per column) in its scrolling box, or `empty` when there is no row.
 * `caption` names it for screen readers where no heading above it does.
 */
export function dataTable(
  columns: readonly Column[],
  rows: unknown[][],
  empty: Html,
  caption?: string,
): Html {
  if (rows.length === 0) return empty;
  const cell = (tag: 'th' | 'td', kind: string | undefined, value: unknown) =>
    tag === 'th'
      ? html`<th scope="col" ${kind === 'num' ? new Html('class="num"') : ''}>${value}</th>`
      : html`<td ${kind ? new Html(`class="${kind}"`) : ''}>${value}</td>`;
  return html`<div class="table">
    <table>
      ${
        caption
          ? html`<caption class="skip">
              ${caption}
            </caption>`
          : ''
      }
      <thead>
        <tr>
          ${columns.map(([heading, kind]) => cell('th', kind, heading))}
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (cells) =>
            html`<tr>
              ${cells.map((v, i) => cell('td', columns[i][1], v))}
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export interface Chrome {
  lang: Lang;
  t: Words;
  /** The signed-in merchant's name, and the CSRF token of the session (absent when signed out). */
  merchant?: string;
  csrf?: string;
  /** Which navigation entry is the current page. */
  current?: 'orders' | 'events' | 'statement' | 'figures';
  /** The path and query of this page, for the language switch. */
  self: string;
}

/** The page around `body`: the navigation, the language switch, sign-out. */
export function layout(chrome: Chrome, title: string, body: Html): string {
  const { t, lang } = chrome;
  const nav = (key: NonNullable<Chrome['current']>, href: string, label: string) =>
    html`<a href="${href}" ${chrome.current === key ? new Html(' aria-current="page"') : ''}
      >${label}</a
    >`;
  const other = lang === 'en' ? 'zh' : 'en';
  const switchTo = `${chrome.self}${chrome.self.includes('?') ? '&' : '?'}lang=${other}`;
  return `<!doctype html>${html`<html lang="${lang === 'en' ? 'en' : 'zh-CN'}">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="color-scheme" content="light dark" />
      <title>${title} · ${t.title}</title>
      <link rel="stylesheet" href="/dashboard/assets/app.css" />
    </head>
    <body>
      <a class="skip" href="#main">${t.skip}</a>
      <header class="top">
        <span class="brand">${t.title}</span>
        ${
          chrome.merchant
            ? html`<nav aria-label="${t.title}">
                ${nav('orders', '/dashboard/orders', t.orders)}
                ${nav('events', '/dashboard/events', t.events)}
                ${nav('statement', '/dashboard/statement', t.statement)}
                ${nav('figures', '/dashboard/figures', t.figures)}
              </nav>`
            : ''
        }
        <span class="top__end">
          <a href="${switchTo}" lang="${other === 'en' ? 'en' : 'zh-CN'}">${t.language}</a>
          ${
            chrome.merchant
              ? html`<span class="merchant">${chrome.merchant}</span>
                  <form method="post" action="/dashboard/sign-out" class="inline">
                    <input type="hidden" name="csrf" value="${chrome.csrf}" />
                    <button type="submit" class="link">${t.signOut}</button>
                  </form>`
              : ''
          }
        </span>
      </header>
      <main id="main">${body}</main>
    </body>
  </html>`}`;
}

/** The style sheet: light and dark, desktop and phone. Served from the platform itself. */
export const STYLE = `
:root { color-scheme: light dark; --bg: #f5f6f7; --surface: #ffffff; --text: #1a1a1a; --muted: #5c5c5c;
  --line: #d9dcdf; --accent: #066d3a; --accent-text: #ffffff; --danger: #b3261e; --focus: #1f5fbf; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #121212; --surface: #1e1e1e; --text: #ececec; --muted: #b0b0b0; --line: #3a3a3a;
    --accent: #3ddc84; --accent-text: #0b2615; --danger: #ff8a80; --focus: #8ab4f8; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 -apple-system, "PingFang SC", "Noto Sans CJK SC", "Segoe UI", sans-serif; }
a { color: var(--focus); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 8px; top: 8px; background: var(--surface); padding: 8px; z-index: 10; }
.top { display: flex; flex-wrap: wrap; gap: 8px 20px; align-items: center; padding: 12px 20px;
  background: var(--surface); border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; }
.top nav { display: flex; flex-wrap: wrap; gap: 4px 16px; }
.top nav a { text-decoration: none; color: var(--text); padding: 4px 0; }
.top nav a[aria-current="page"] { border-bottom: 3px solid var(--accent); font-weight: 600; }
.top__end { margin-left: auto; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.merchant { color: var(--muted); }
main { max-width: 1100px; margin: 0 auto; padding: 20px; }
h1 { font-size: 22px; margin: 4px 0 16px; }
h2 { font-size: 17px; margin: 24px 0 10px; }
.card { background: var(--surface); border: 1px solid var(--line); border-radius: 10px; padding: 16px; margin-bottom: 16px; }
.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; }
label { display: flex; flex-direction: column; gap: 4px; font-size: 13px; color: var(--muted); }
input, select { font: inherit; color: var(--text); background: var(--surface); border: 1px solid var(--line);
  border-radius: 6px; padding: 7px 9px; min-height: 38px; }
button { font: inherit; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent);
  color: var(--accent-text); padding: 7px 16px; min-height: 38px; cursor: pointer; font-weight: 600; }
button.secondary { background: transparent; color: var(--text); border-color: var(--line); }
button.link { background: none; border: none; color: var(--focus); padding: 0; min-height: 0; font-weight: 400; text-decoration: underline; }
form.inline { display: inline; margin: 0; }
.table { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; background: var(--surface); }
th, td { text-align: left; padding: 9px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 13px; border: 1px solid var(--line); }
.badge--paid, .badge--succeeded, .badge--delivered { border-color: var(--accent); }
.badge--failed, .badge--declined { border-color: var(--danger); }
.notice { padding: 10px 14px; border-radius: 8px; border: 1px solid var(--accent); background: var(--surface); margin-bottom: 16px; }
.alert { padding: 10px 14px; border-radius: 8px; border: 1px solid var(--danger); color: var(--danger); background: var(--surface); margin-bottom: 16px; }
.muted { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 20px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.pager { display: flex; gap: 16px; margin-top: 12px; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
.figure { background: var(--surface); border: 1px solid var(--line); border-radius: 10px; padding: 14px; }
.figure strong { display: block; font-size: 22px; margin-top: 4px; }
.chart { width: 100%; max-width: 720px; height: auto; }
.chart rect { fill: var(--accent); }
.chart text { fill: var(--text); font-size: 12px; }
.signin { max-width: 420px; margin: 40px auto; }
.signin form { display: flex; flex-direction: column; gap: 14px; }
@media (max-width: 600px) {
  main { padding: 12px; }
  .top__end { margin-left: 0; }
  th, td { padding: 8px 6px; }
}
`;
