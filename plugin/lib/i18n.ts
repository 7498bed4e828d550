import type { CheckoutError } from '../../src/core/checkout';

export type Locale = 'zh_CN' | 'en_US';

/** Every word the plugin shows or speaks to a screen reader. */
export interface Strings {
  payByCard: string;
  typeNumber: string;
  cardNumber: string;
  next: string;
  setPassword: string;
  setPasswordHint: string;
  repeatPassword: string;
  enterPassword: string;
  passwordDots: string;
  deleteKey: string;
  scanning: string;
  working: string;
  confirmTitle: string;
  confirm: string;
  reject: string;
  card: string;
  amount: string;
  authTitle: string;
  useBiometric: string;
  cvvLabel: string;
  cvvSubmit: string;
  attemptsLeft: string;
  processing: string;
  paid: string;
  failed: string;
  expired: string;
  cancelled: string;
  discount: string;
  charged: string;
  retry: string;
  close: string;
  cancel: string;
  brands: Record<string, string>;
}

const zh: Strings = {
  payByCard: '银行卡支付',
  typeNumber: '手动输入卡号',
  cardNumber: '银行卡号',
  next: '下一步',
  setPassword: '设置6位支付密码',
  setPasswordHint: '请勿使用重复或连续的数字',
  repeatPassword: '请再次输入以确认',
  enterPassword: '请输入支付密码',
  passwordDots: '已输入{n}位，共6位',
  deleteKey: '删除',
  scanning: '请扫描银行卡上的二维码或条形码',
  working: '正在读取卡片信息…',
  confirmTitle: '确认付款',
  confirm: '确认支付',
  reject: '取消',
  card: '付款卡',
  amount: '金额',
  authTitle: '验证身份',
  useBiometric: '使用指纹或面容支付',
  cvvLabel: '卡背面的安全码（CVV）',
  cvvSubmit: '提交',
  attemptsLeft: '还可尝试{n}次',
  processing: '正在向银行确认支付结果…',
  paid: '支付成功',
  failed: '支付未完成',
  expired: '支付已超时',
  cancelled: '已取消',
  discount: '会员优惠',
  charged: '实付',
  retry: '重试',
  close: '关闭',
  cancel: '取消',
  brands: { unionpay: '银联', visa: 'Visa', mastercard: 'Mastercard', amex: '美国运通', jcb: 'JCB', discover: 'Discover', diners: '大来卡', unknown: '银行卡' },
};

const en: Strings = {
  payByCard: 'Pay by card',
  typeNumber: 'Type the card number',
  cardNumber: 'Card number',
  next: 'Next',
  setPassword: 'Set a 6-digit payment password',
  setPasswordHint: 'Avoid repeated or sequential digits',
  repeatPassword: 'Enter it again to confirm',
  enterPassword: 'Enter your payment password',
  passwordDots: '{n} of 6 digits entered',
  deleteKey: 'Delete',
  scanning: 'Scan the QR code or bar code on your card',
  working: 'Reading the card…',
  confirmTitle: 'Confirm the payment',
  confirm: 'Pay now',
  reject: 'Cancel',
  card: 'Card',
  amount: 'Amount',
  authTitle: 'Verify it is you',
  useBiometric: 'Use fingerprint or face',
  cvvLabel: 'Security code (CVV) on the back of the card',
  cvvSubmit: 'Submit',
  attemptsLeft: '{n} attempts left',
  processing: 'Confirming the payment with your bank…',
  paid: 'Payment successful',
  failed: 'Payment not completed',
  expired: 'The payment timed out',
  cancelled: 'Cancelled',
  discount: 'Loyalty discount',
  charged: 'Charged',
  retry: 'Try again',
  close: 'Close',
  cancel: 'Cancel',
  brands: { unionpay: 'UnionPay', visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', jcb: 'JCB', discover: 'Discover', diners: 'Diners Club', unknown: 'Card' },
};

/** Error words: by `code`, refined by `reason`/`detected`/`declineCode` where those say more. */
const zhErrors: Record<string, string> = {
  'invalid_card/wechat_pay': '这是微信支付付款码，不是银行卡',
  'invalid_card/alipay': '这是支付宝付款码，不是银行卡',
  'invalid_card/merchant_qr': '这是商家收款码，不是银行卡',
  'invalid_card/url': '这是一个网址，不是银行卡',
  'invalid_card/luhn': '卡号校验未通过，请核对后重试',
  'invalid_card/length': '卡号位数不对，请核对后重试',
  'invalid_card/empty': '没有读到内容，请重新扫描',
  invalid_card: '没有识别到银行卡号，请扫描卡上的二维码或条形码',
  unsupported_card: '商户暂不支持此卡，请换一张卡',
  amount_mismatch: '订单金额已变化，请返回重新下单',
  order_already_paid: '该订单已支付',
  scan_cancelled: '已取消扫码',
  scan_denied: '无法使用相机，请手动输入卡号',
  scan_failed: '扫码失败，请重试或手动输入卡号',
  network_error: '网络不稳定，请稍后重试',
  timeout: '网络不稳定，请稍后重试',
  response_unverified: '无法验证支付平台的回复，已为您停止本次操作',
  password_format: '支付密码为6位数字',
  password_weak: '密码太简单（重复、连续或常见数字），请换一个',
  password_mismatch: '两次输入的密码不一致，请重新设置',
  auth_failed: '支付密码错误',
  auth_locked: '密码错误次数过多，已锁定15分钟，请稍后再试',
  challenge_stale: '验证已更新，请重新输入',
  biometric_cancelled: '已取消生物识别，可改用支付密码',
  biometric_failed: '生物识别未通过，可改用支付密码',
  biometric_unavailable: '此设备不能使用生物识别',
  cvv_format: '安全码为卡背面的3或4位数字',
  'payment_declined/insufficient_funds': '余额不足，请换一张卡',
  'payment_declined/incorrect_cvc': '安全码错误',
  payment_declined: '银行拒绝了此次交易，请换一张卡',
  payment_unavailable: '银行暂时无法处理，请稍后重试',
  session_expired: '支付已超时，请重新开始',
  merchant_unknown: '商户信息有误，请联系商家',
  config_invalid: '支付组件配置有误，请联系商家',
  rate_limited: '操作太频繁，请稍后再试',
  default: '支付未完成，请稍后重试',
};

const enErrors: Record<string, string> = {
  'invalid_card/wechat_pay': 'This is a WeChat Pay payment code, not a bank card',
  'invalid_card/alipay': 'This is an Alipay payment code, not a bank card',
  'invalid_card/merchant_qr': "This is a shop's payment QR code, not a bank card",
  'invalid_card/url': 'This is a web address, not a bank card',
  'invalid_card/luhn': 'The card number does not check out; please look at it again',
  'invalid_card/length': 'The card number has the wrong number of digits',
  'invalid_card/empty': 'Nothing was read; please scan again',
  invalid_card: 'No card number found; scan the QR code or bar code on the card',
  unsupported_card: 'The shop does not take this card; please use another',
  amount_mismatch: 'The order amount changed; please go back and order again',
  order_already_paid: 'This order is already paid',
  scan_cancelled: 'Scanning cancelled',
  scan_denied: 'The camera is not available; type the card number instead',
  scan_failed: 'Scanning failed; try again or type the card number',
  network_error: 'The network is unstable; please try again',
  timeout: 'The network is unstable; please try again',
  response_unverified: 'The payment service’s answer could not be verified, so we stopped here',
  password_format: 'The payment password is 6 digits',
  password_weak: 'That password is too easy to guess (repeated, sequential or common digits)',
  password_mismatch: 'The two entries differ; please set the password again',
  auth_failed: 'Wrong payment password',
  auth_locked: 'Too many wrong attempts: locked for 15 minutes',
  challenge_stale: 'The verification was refreshed; please enter it again',
  biometric_cancelled: 'Biometrics cancelled; you can use your password',
  biometric_failed: 'Biometrics did not match; you can use your password',
  biometric_unavailable: 'Biometrics are not available on this device',
  cvv_format: 'The security code is the 3 or 4 digits on the back of the card',
  'payment_declined/insufficient_funds': 'Insufficient funds; please use another card',
  'payment_declined/incorrect_cvc': 'Wrong security code',
  payment_declined: 'The bank declined this payment; please use another card',
  payment_unavailable: 'The bank cannot take payments right now; please try later',
  session_expired: 'The payment timed out; please start again',
  merchant_unknown: 'The shop’s details are wrong; please contact the shop',
  config_invalid: 'The payment component is misconfigured; please contact the shop',
  rate_limited: 'Too many attempts; please wait a moment',
  default: 'The payment did not complete; please try again later',
};

const TABLES: Record<Locale, { strings: Strings; errors: Record<string, string> }> = {
  zh_CN: { strings: zh, errors: zhErrors },
  en_US: { strings: en, errors: enErrors },
};

/** The locale to use: `en_US` when asked for, else zh_CN (also for anything unknown). */
export function pickLocale(requested?: string): Locale {
  return requested === 'en_US' ? 'en_US' : 'zh_CN';
}

export function stringsFor(locale: Locale): Strings {
  return TABLES[locale].strings;
}

/** Words a user understands for an error; never the developer message. */
export function errorText(locale: Locale, error: CheckoutError): string {
  const table = TABLES[locale].errors;
  const refined = error.detected && error.detected !== 'text' ? error.detected : error.reason ?? error.declineCode;
  let text = (refined && table[`${error.code}/${refined}`]) || table[error.code] || table.default;
  if (error.code === 'auth_failed' && typeof error.attemptsLeft === 'number') {
    text += locale === 'zh_CN' ? `，${format(zh.attemptsLeft, error.attemptsLeft)}` : `: ${format(en.attemptsLeft, error.attemptsLeft)}`;
  }
  return text;
}

export function format(template: string, n: number | string): string {
  return template.replace('{n}', String(n));
}
