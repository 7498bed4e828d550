import type { CheckoutError } from '../../packages/sdk/src/core/checkout';

export type Locale = 'zh_CN' | 'en_US';

/** A text in each locale, side by side so that neither can be forgotten: [zh_CN, en_US]. */
type Texts = readonly [zh: string, en: string];

const LOCALES: readonly Locale[] = ['zh_CN', 'en_US'];

/** Every word the plugin shows or speaks to a screen reader. */
const WORDS = {
  payByCard: ['银行卡支付', 'Pay by card'],
  serviceBy: ['当前服务由 {name} 提供', 'This service is provided by {name}'],
  typeNumber: ['手动输入卡号', 'Type the card number'],
  cardNumber: ['银行卡号', 'Card number'],
  next: ['下一步', 'Next'],
  setPassword: ['设置新的6位支付密码', 'Create a new 6-digit payment password'],
  setPasswordHint: [
    '此密码仅用于本机银行卡支付，不是银行卡取款密码；请勿使用重复或连续的数字',
    'Only for card payments on this phone, not your card’s PIN. No repeated or sequential digits',
  ],
  repeatPassword: ['请再次输入新密码以确认', 'Enter the new password again to confirm'],
  stepOne: ['第1步，共2步', 'Step 1 of 2'],
  stepTwo: ['第2步，共2步：确认', 'Step 2 of 2: confirm'],
  or: ['或', 'or'],
  bothNeeded: ['需同时完成以下两项验证', 'Both of the following are needed'],
  payee: ['收款方', 'Pay to'],
  done: ['完成', 'Done'],
  originalPrice: ['原价', 'Price'],
  passwordDots: ['已输入{n}位，共6位', '{n} of 6 digits entered'],
  deleteKey: ['删除', 'Delete'],
  scanning: ['请扫描银行卡上的二维码或条形码', 'Scan the QR code or bar code on your card'],
  working: ['正在读取卡片信息…', 'Reading the card…'],
  confirmTitle: ['确认付款', 'Confirm the payment'],
  confirm: ['确认支付', 'Pay now'],
  card: ['付款卡', 'Card'],
  goods: ['商品', 'Item'],
  amount: ['金额', 'Amount'],
  authTitle: ['请输入支付密码', 'Enter your payment password'],
  verifyTitle: ['验证身份', 'Verify it is you'],
  useBiometric: ['使用指纹或面容支付', 'Use fingerprint or face'],
  cvvTitle: ['请输入卡背面的安全码', 'Enter the security code on the back of the card'],
  cvvDots: ['已输入{n}位', '{n} digits entered'],
  forgot: ['忘记密码', 'Forgot password'],
  resetTitle: ['重置支付密码', 'Reset the payment password'],
  resetCardHint: [
    '请使用曾在此手机支付过的银行卡验证身份',
    'Use a card that has paid on this phone',
  ],
  scanOther: ['扫描其他银行卡', 'Scan another card'],
  resetNew: ['请设置新的6位支付密码', 'Create a new 6-digit payment password'],
  resetDone: ['支付密码已重置', 'Your payment password was reset'],
  close: ['关闭', 'Close'],
  toPay: ['实付', 'To pay'],
  attemptsLeft: ['还可尝试{n}次', '{n} attempts left'],
  oneMoreMethod: ['此金额需要再验证一种方式', 'This amount needs one more method'],
  cardFirstUse: [
    '首次在此手机使用这张卡，需验证卡背面的安全码',
    'First time with this card on this phone: its security code is needed',
  ],
  processing: ['正在向银行确认支付结果…', 'Confirming the payment with your bank…'],
  stillProcessing: [
    '银行仍在处理，结果可能稍后才出，请勿重复支付',
    'Your bank is still confirming; please do not pay again',
  ],
  refresh: ['刷新结果', 'Check again'],
  paid: ['支付成功', 'Payment successful'],
  failed: ['支付失败', 'Payment failed'],
  expired: ['支付已超时', 'The payment timed out'],
  cancelled: ['已取消', 'Cancelled'],
  discount: ['会员优惠', 'Loyalty discount'],
  charged: ['实付', 'Charged'],
  retry: ['重试', 'Try again'],
  cancel: ['取消', 'Cancel'],
} satisfies Record<string, Texts>;

const CARD_TYPES = {
  debit: ['储蓄卡', 'debit'],
  credit: ['信用卡', 'credit'],
  prepaid: ['预付卡', 'prepaid'],
} satisfies Record<string, Texts>;

const BRANDS = {
  unionpay: ['银联', 'UnionPay'],
  visa: ['Visa', 'Visa'],
  mastercard: ['Mastercard', 'Mastercard'],
  amex: ['美国运通', 'American Express'],
  jcb: ['JCB', 'JCB'],
  discover: ['Discover', 'Discover'],
  diners: ['大来卡', 'Diners Club'],
  unknown: ['银行卡', 'Card'],
} satisfies Record<string, Texts>;

/** Biometrics that cannot be checked now (no identity in WeChat, WeChat unreachable). */
const BIOMETRICS_LATER: Texts = [
  '暂时无法使用指纹或面容，请使用支付密码',
  'Biometrics cannot be used now; use your password',
];

/** Error words: by `code`, refined by `reason`/`detected`/`declineCode` where those say more. */
const ERRORS: Record<string, Texts> = {
  'invalid_card/wechat_pay': [
    '这是微信支付付款码，不是银行卡',
    'This is a WeChat Pay payment code, not a bank card',
  ],
  'invalid_card/alipay': [
    '这是支付宝付款码，不是银行卡',
    'This is an Alipay payment code, not a bank card',
  ],
  'invalid_card/merchant_qr': [
    '这是商家收款码，不是银行卡',
    "This is a shop's payment QR code, not a bank card",
  ],
  'invalid_card/url': ['这是一个网址，不是银行卡', 'This is a web address, not a bank card'],
  'invalid_card/luhn': [
    '卡号校验未通过，请核对后重试',
    'The card number does not check out; please look at it again',
  ],
  'invalid_card/length': [
    '卡号位数不对，请核对后重试',
    'The card number has the wrong number of digits',
  ],
  'invalid_card/empty': ['没有读到内容，请重新扫描', 'Nothing was read; please scan again'],
  invalid_card: [
    '没有识别到银行卡号，请扫描卡上的二维码或条形码',
    'No card number found; scan the code on the card',
  ],
  unsupported_card: [
    '商户暂不支持此卡，请换一张卡',
    'The shop does not take this card; please use another',
  ],
  amount_mismatch: ['订单金额已变化，请返回重新下单', 'The amount changed; please order again'],
  order_already_paid: [
    '该订单已支付，本次未扣款',
    'This order is already paid; nothing was charged',
  ],
  order_payment_in_progress: [
    '该订单有一笔支付正在确认，请稍后再验证',
    'Another payment for this order is being confirmed; try again shortly',
  ],
  scan_cancelled: ['已取消扫码', 'Scanning cancelled'],
  scan_denied: ['无法使用相机，请手动输入卡号', 'No camera; type the card number instead'],
  scan_failed: [
    '扫码失败，请重试或手动输入卡号',
    'Scanning failed; try again or type the card number',
  ],
  network_error: ['网络不稳定，请稍后重试', 'The network is unstable; please try again'],
  timeout: ['网络不稳定，请稍后重试', 'The network is unstable; please try again'],
  response_unverified: [
    '无法验证支付平台的回复，已为您停止本次操作',
    'The answer could not be verified, so we stopped',
  ],
  password_format: ['支付密码为6位数字', 'The payment password is 6 digits'],
  password_weak: [
    '密码太简单（重复、连续或常见数字），请换一个',
    'Too easy to guess (repeated, sequential or common digits)',
  ],
  password_mismatch: [
    '两次输入的密码不一致，请重新设置',
    'The two entries differ; please set the password again',
  ],
  auth_failed: ['支付密码错误', 'Wrong payment password'],
  'auth_failed/biometric': ['生物识别未通过', 'Biometrics did not match'],
  auth_locked: [
    '密码错误次数过多，已锁定15分钟。可点“忘记密码”重置',
    'Locked for 15 minutes after too many wrong attempts; or use “Forgot password”',
  ],
  card_not_bound: [
    '这张卡未在此手机支付过，请换一张支付过的卡',
    'This card has not paid on this phone; use one that has',
  ],
  cvv_invalid: [
    '安全码错误，请核对卡背面的数字',
    'Wrong security code; check the back of the card',
  ],
  identity_required: BIOMETRICS_LATER,
  challenge_stale: [
    '验证已更新，请重新输入',
    'The verification was refreshed; please enter it again',
  ],
  biometric_cancelled: [
    '已取消生物识别，可改用支付密码',
    'Biometrics cancelled; you can use your password',
  ],
  biometric_failed: [
    '生物识别未通过，可改用支付密码',
    'Biometrics did not match; you can use your password',
  ],
  biometric_unavailable: ['此设备不能使用生物识别', 'Biometrics are not available on this device'],
  cvv_format: [
    '安全码为卡背面的3或4位数字',
    'The security code is the 3 or 4 digits on the card’s back',
  ],
  'payment_declined/insufficient_funds': [
    '余额不足，请换一张卡',
    'Insufficient funds; use another card',
  ],
  'payment_declined/incorrect_cvc': ['安全码错误', 'Wrong security code'],
  payment_declined: [
    '银行拒绝了此次交易，请换一张卡',
    'The bank declined this payment; please use another card',
  ],
  payment_unavailable: [
    '银行暂时无法处理，请稍后重试',
    'The bank cannot take payments now; try later',
  ],
  session_expired: ['支付已超时，请重新开始', 'The payment timed out; please start again'],
  merchant_unknown: [
    '商户信息有误，请联系商家',
    'The shop’s details are wrong; please contact the shop',
  ],
  config_invalid: [
    '支付组件配置有误，请联系商家',
    'The payment is misconfigured; please contact the shop',
  ],
  rate_limited: ['操作太频繁，请稍后再试', 'Too many attempts; please wait a moment'],
  // WeChat could not check the signature now: the same words; the password still works.
  wechat_unavailable: BIOMETRICS_LATER,
  default: ['支付失败，请稍后重试', 'The payment failed; please try again later'],
};

export type Strings = { [K in keyof typeof WORDS]: string } & {
  brands: Record<string, string>;
  cardTypes: Record<string, string>;
};

const cache: Partial<Record<Locale, Strings>> = {};

/** The locale to use: `en_US` when asked for, else zh_CN (also for anything unknown). */
export function pickLocale(requested?: string): Locale {
  return requested === 'en_US' ? 'en_US' : 'zh_CN';
}

function pick<T extends Record<string, Texts>>(
  table: T,
  index: number,
): { [K in keyof T]: string } {
  const out = {} as Record<string, string>;
  for (const key of Object.keys(table)) out[key] = table[key][index];
  return out as { [K in keyof T]: string };
}

export function stringsFor(locale: Locale): Strings {
  const index = LOCALES.indexOf(locale);
  return (cache[locale] ??= {
    ...pick(WORDS, index),
    brands: pick(BRANDS, index),
    cardTypes: pick(CARD_TYPES, index),
  });
}

/** Words a user understands for an error; never the developer message. */
export function errorText(locale: Locale, error: CheckoutError): string {
  const index = LOCALES.indexOf(locale);
  const refined =
    error.detected && error.detected !== 'text'
      ? error.detected
      : (error.reason ?? error.declineCode ?? error.method);
  let text = ((refined && ERRORS[`${error.code}/${refined}`]) ||
    ERRORS[error.code] ||
    ERRORS.default)[index];
  if (error.code === 'auth_failed' && typeof error.attemptsLeft === 'number') {
    text += (index ? ': ' : '，') + format(WORDS.attemptsLeft[index], error.attemptsLeft);
  }
  return text;
}

function format(template: string, n: number | string): string {
  return template.replace('{n}', String(n));
}
