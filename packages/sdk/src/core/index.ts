// The SDK core: host-agnostic (no wx, no Node built-ins, no DOM).
export { CardPayError, isCardPayError } from './errors';
export type {
  CardPayErrorCode,
  CardPayErrorOptions,
  ProtocolErrorCode,
  SdkErrorCode,
} from './errors';
export * from './protocol';
export { validate } from './schema';
export type { Schema, ValidationResult } from './schema';
export { parseCard, luhnValid, maskPan, MIN_PAN_LENGTH, MAX_PAN_LENGTH } from './card/reader';
export type {
  CardParse,
  CardParseResult,
  CardReadFailure,
  CardReadReason,
  DetectedKind,
} from './card/reader';
export { readCard, detectBrand } from './card/brand';
export type { CardRead, CardReadResult } from './card/brand';
export { parseTlv, findCpmPan } from './card/emv';
// SM3, HMAC-SM3 and PBKDF2-HMAC-SM3: the hashes of the cardpay-sm-v1 suite (PROTOCOL.md §3.1).
export { sm3, hmacSm3, pbkdf2Sm3 } from './sm3';
export {
  sha256Hex,
  hmacSha256Hex,
  hashHex,
  macHex,
  derivePinKey,
  canonicalRequest,
  canonicalResponse,
  signRequest,
  signResponse,
  passwordProof,
  authMessage,
  constantTimeEqual,
  hexBytes,
  EMPTY_BODY_HASH,
  MIN_PBKDF2_ITERATIONS,
} from './crypto';
export type { CanonicalRequestParts, CanonicalResponseParts, ProofInput } from './crypto';
export { utf8Encode, utf8Decode, toHex, fromHex, base64Decode, base64Encode } from './encoding';
export { formatAmount, currencyExponent, isValidAmount } from './money';
export { PlatformClient, normaliseBaseUrl } from './client';
export type { PlatformClientOptions, TerminalIdentity } from './client';
export {
  enrolTerminal,
  passwordWeakness,
  checkNewPassword,
  loadCredentials,
  clearCredentials,
  credentialsKey,
} from './enrolment';
export type { TerminalCredentials, EnrolOptions } from './enrolment';
export { Checkout, createCheckout, toCheckoutError } from './checkout';
export type {
  AuthInput,
  CheckoutError,
  CheckoutEvents,
  CheckoutOptions,
  CheckoutSnapshot,
  CheckoutState,
} from './checkout';
export { HostError } from './host';
export type {
  Host,
  HostRequest,
  HostResponse,
  HostStorage,
  ScanOutcome,
  BiometricProvider,
  BiometricAssertion,
} from './host';
export { VERSION } from './version';
