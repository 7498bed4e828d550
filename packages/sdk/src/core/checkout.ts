import { parseCard, type CardReadReason, type DetectedKind } from './card/reader';
import { PlatformClient, type PlatformClientOptions } from './client';
import { derivePinKey, hexBytes, passwordProof, sha256Hex } from './crypto';
import { Emitter } from './emitter';
import {
  checkNewPassword,
  clearCredentials,
  enrolTerminal,
  loadCredentials,
  storeCredentials,
  type TerminalCredentials,
} from './enrolment';
import { toHex } from './encoding';
import { CardPayError, isCardPayError, type CardPayErrorCode } from './errors';
import { delay } from './timers';
import type { Host } from './host';
import { isValidAmount } from './money';
import { idPattern, SUITES } from './protocol';
import type {
  AuthMethod,
  AuthPrompt,
  BiometricMode,
  CardInput,
  CardSummary,
  ConfirmationView,
  Factor,
  InputPort,
  Payment,
  ScanType,
  SessionState,
  SessionView,
  Suite,
} from './protocol';

/**
 * The session states of PROTOCOL.md §5 plus the client's own: `idle` (entry), `enrolling`,
 * `scanning`, and `resetting` (a forgotten password, §5.7).
 */
export type CheckoutState = 'idle' | 'enrolling' | 'scanning' | 'resetting' | SessionState;

/** An error as the UI shows it and the `fail` event carries it. */
export interface CheckoutError {
  code: CardPayErrorCode;
  message: string;
  retryable: boolean;
  /** For `invalid_card`: why the code is not a usable card. */
  reason?: CardReadReason;
  /** For `invalid_card`: what the code was recognised as (a URL, a wallet payment code…). */
  detected?: DetectedKind;
  /** For `payment_declined`: the payment platform's reason. */
  declineCode?: string;
  /** For `auth_failed`: attempts before the lockout. */
  attemptsLeft?: number;
  /** For `auth_failed` after a single factor: the method that did not match. */
  method?: AuthMethod;
}

/** Everything the UI renders. A new object per transition, so one transition is one `setData`. */
export interface CheckoutSnapshot {
  state: CheckoutState;
  /** A network step is in flight: controls should not accept input. */
  busy: boolean;
  enrolled: boolean;
  amount?: number;
  currency: string;
  description?: string;
  orderRef?: string;
  sessionId?: string;
  confirmation?: ConfirmationView;
  authPrompt?: AuthPrompt;
  /** Biometric modes the host lends and the device has enrolled. */
  biometricModes: BiometricMode[];
  payment?: Payment;
  /**
   * `processing` outlasted the polling wait: the outcome is not known yet (never assume it
   * failed: the charge may still go through). `refresh()` asks again.
   */
  stillProcessing?: boolean;
  error?: CheckoutError;
  /** Something done that the shopper should hear of: the payment password was just reset. */
  notice?: 'password_reset';
  /**
   * While `resetting`: the card of this session, which a reset may use without scanning again
   * (its number stays in memory only). Absent when there is none.
   */
  resetCard?: CardSummary;
}

export interface CheckoutEvents extends Record<string, unknown> {
  change: CheckoutSnapshot;
  statechange: { state: CheckoutState };
  success: { payment: Payment };
  fail: { error: CheckoutError };
  cancel: Record<string, never>;
}

export interface CheckoutOptions {
  host: Host;
  platformUrl: string;
  merchantId: string;
  /** A merchant order made with PROTOCOL.md §7; its amount wins over `amount`. */
  orderRef?: string;
  /** Minor units, for merchants that allow open amounts. */
  amount?: number;
  /** ISO 4217, default `CNY`. */
  currency?: string;
  description?: string;
  /** Transport settings of the platform client. */
  network?: Omit<PlatformClientOptions, 'baseUrl' | 'host'>;
  /** How often `processing` is polled. Default 1 s. */
  pollIntervalMs?: number;
  /** How long `processing` is polled before the checkout stops waiting. Default 60 s. */
  pollTimeoutMs?: number;
  /** PBKDF2 iterations at enrolment. Default 10,000. */
  iterations?: number;
  /**
   * The cryptographic suite a new enrolment registers with (PROTOCOL.md §3.1): `cardpay-v1`
   * (SHA-256, the default) or `cardpay-sm-v1` (SM3). An enrolled terminal keeps its own.
   */
  suite?: Suite;
}

/** What the user gives for one authentication factor. */
export type AuthInput =
  | { method: 'password'; password: string }
  | { method: 'cvv'; cvv: string }
  | { method: 'biometric'; mode?: BiometricMode };

interface LiveSession {
  id: string;
  state: SessionState;
  expiresAt: number;
  inputPort?: InputPort;
}

/** A prefetched session is used only while it has this much life left. */
const SESSION_MARGIN_MS = 30000;
const BEFORE_PROCESSING: SessionState[] = [
  'awaiting_order',
  'awaiting_confirmation',
  'awaiting_authentication',
];
const LOST_ANSWER: CardPayErrorCode[] = [
  'network_error',
  'timeout',
  'internal_error',
  'payment_unavailable',
];

/**
 * The checkout flow of PROTOCOL.md §5, driven by method calls, reporting through events.
 * `change` carries the whole snapshot after each transition; `statechange`, `success`, `fail` and
 * `cancel` are the component's public events.
 *
 * @example
 * const checkout = new Checkout({ host, platformUrl, merchantId: 'mch_sandbox', amount: 1999 })
 * checkout.on('change', (s) => render(s))
 * await checkout.start()      // resumes an unfinished session, or prefetches the input port
 * await checkout.begin()      // enrolment on first use, else the scanner
 * await checkout.confirm()
 * await checkout.authenticate([{ method: 'password', password: '204816' }])
 */
export class Checkout extends Emitter<CheckoutEvents> {
  readonly client: PlatformClient;
  private readonly options_: CheckoutOptions;
  private readonly host_: Host;
  private snap_: CheckoutSnapshot;
  private credentials_?: TerminalCredentials;
  private session_?: LiveSession;
  private prefetching_?: Promise<unknown>;
  private polling_ = false;
  private destroyed_ = false;
  /** Start-up in progress or done: every action waits for it, so a tap during start-up is not lost. */
  private ready_?: Promise<void>;
  private readonly sleep_: (ms: number) => Promise<void>;
  /** The card given in this session, in memory only: a password reset may use it again. */
  private card_?: CardInput;
  /** Where a password reset returns to. */
  private resetFrom_?: CheckoutState;

  constructor(options: CheckoutOptions) {
    super();
    if (!options || !options.host)
      throw new CardPayError('invalid_argument', 'createCheckout needs a host');
    assertId('merchantId', 'mch', options.merchantId);
    if (options.orderRef !== undefined) assertId('orderRef', 'mor', options.orderRef);
    if (options.orderRef === undefined && !isValidAmount(options.amount)) {
      throw new CardPayError(
        'config_invalid',
        `amount must be an integer of minor units from 1 to 100000000 (or give an orderRef), got ${JSON.stringify(options.amount)}`,
      );
    }
    assertSuite(options.suite);
    const currency = options.currency ?? 'CNY';
    if (!/^[A-Z]{3}$/.test(currency)) {
      throw new CardPayError(
        'config_invalid',
        `currency must be an upper-case ISO 4217 code, got ${JSON.stringify(currency)}`,
      );
    }
    this.options_ = options;
    this.host_ = options.host;
    this.sleep_ = options.network?.sleep ?? delay;
    this.client = new PlatformClient({
      ...options.network,
      baseUrl: options.platformUrl,
      host: options.host,
    });
    this.snap_ = {
      state: 'idle',
      busy: false,
      enrolled: false,
      amount: options.amount,
      currency,
      description: options.description,
      orderRef: options.orderRef,
      biometricModes: [],
    };
  }

  /** The current snapshot. */
  get snapshot(): CheckoutSnapshot {
    return this.snap_;
  }

  /**
   * Loads the terminal's credentials, then resumes an unfinished session of this order (showing,
   * say, the result of a payment that completed while the app was closed). No new session is
   * opened until the shopper shows intent ({@link Checkout.prepare}, {@link Checkout.begin}): a
   * page that mounts the checkout, or re-creates it on every cart change, costs the platform
   * nothing.
   */
  start(): Promise<void> {
    this.ready_ ??= this.load_();
    return this.ready_;
  }

  private async load_(): Promise<void> {
    this.credentials_ = await loadCredentials(this.host_, this.client.baseUrl);
    this.client.identity = this.credentials_;
    const biometricModes = await this.biometricModes_();
    this.snap_ = { ...this.snap_, enrolled: !!this.credentials_, biometricModes };
    const stored = await this.resumeStored_();
    if (stored.kind === 'adopted') return;
    if (stored.kind === 'unreachable') {
      this.update_({ state: 'idle', error: toCheckoutError(stored.error) });
      return;
    }
    this.update_({ state: 'idle' });
  }

  /**
   * The shopper's first touch of the pay button: opens the session's input port now, so that the
   * scanner opens without waiting on the network when the tap completes. Safe to call often.
   */
  async prepare(): Promise<void> {
    await this.start();
    if (this.snap_.state === 'idle' || this.snap_.state === 'cancelled') this.prefetch_();
  }

  /** The tap on the plugin: enrolment on first use, else the scanner. */
  async begin(): Promise<void> {
    await this.start();
    if (this.snap_.busy || !['idle', 'cancelled', 'expired'].includes(this.snap_.state)) return;
    // A session kept from a visit when the platform could not be asked: check it before anything
    // could open a second charge.
    const stored = await this.resumeStored_();
    if (stored.kind === 'unreachable') return this.fail_('idle', stored.error);
    if (stored.kind === 'adopted' && this.snap_.state !== 'idle') return;
    if (!this.credentials_) {
      this.update_({ state: 'enrolling', error: undefined });
      return;
    }
    await this.scan();
  }

  /** Sets the payment password (entered twice) and registers the terminal, then opens the scanner. */
  async enrol(password: string, repeat: string): Promise<void> {
    await this.start();
    if (this.snap_.state !== 'enrolling' || this.snap_.busy) return;
    try {
      this.update_({ busy: true, error: undefined });
      await showBusy(); // the derivation below holds the thread: let the view say so first
      this.credentials_ = await enrolTerminal({
        host: this.host_,
        client: this.client,
        password,
        repeat,
        iterations: this.options_.iterations,
        suite: this.options_.suite,
      });
      // The biometric key was registered just now: the first payment may already use it.
      const biometricModes = await this.biometricModes_();
      this.snap_ = { ...this.snap_, enrolled: true, busy: false, biometricModes };
    } catch (error) {
      this.fail_('enrolling', error);
      return;
    }
    this.prefetch_();
    await this.scan();
  }

  /** Opens the host's scanner with the platform's scan types and submits what it reads. */
  async scan(): Promise<void> {
    await this.start();
    if (this.snap_.busy) return;
    this.update_({ state: 'scanning', error: undefined });
    let session: LiveSession;
    try {
      session = await this.ensureSession_();
    } catch (error) {
      this.fail_('idle', error);
      return;
    }
    const card = await this.scanOnce_(session.inputPort?.scanTypes, 'idle');
    if (card) await this.submitCard_(card);
  }

  /**
   * Opens the host's scanner once: what it read, or undefined with the reason shown in `stayIn`
   * (a shopper who closed the scanner is shown nothing: the error is `scan_cancelled`).
   */
  private async scanOnce_(
    scanType: ScanType[] | undefined,
    stayIn: CheckoutState,
  ): Promise<CardInput | undefined> {
    const outcome = await this.host_.scanCode({
      scanType: scanType || ['qrCode', 'barCode'],
    });
    if (outcome.ok) return { source: 'scan', scanType: outcome.scanType, payload: outcome.result };
    const code =
      outcome.reason === 'cancelled'
        ? 'scan_cancelled'
        : outcome.reason === 'denied'
          ? 'scan_denied'
          : 'scan_failed';
    this.fail_(stayIn, new CardPayError(code, outcome.message, { retryable: true }));
    return undefined;
  }

  /** Submits a card number the user typed (when there is nothing to scan or the camera is refused). */
  async enterManually(digits: string): Promise<void> {
    await this.start();
    if (this.snap_.busy) return;
    await this.submitCard_({ source: 'manual', payload: String(digits ?? '') });
  }

  /** Accepts the order confirmation; the platform answers with the authentication prompt. */
  async confirm(): Promise<void> {
    await this.answerConfirmation_(true);
  }

  /** Rejects the order confirmation: the session ends as `cancelled`. */
  async reject(): Promise<void> {
    await this.answerConfirmation_(false);
  }

  /**
   * Answers the authentication prompt with as many factors as it requires.
   * Wrong answers keep the checkout in `awaiting_authentication` with a fresh prompt.
   */
  async authenticate(inputs: AuthInput[]): Promise<void> {
    await this.start();
    const { confirmation, authPrompt } = this.snap_;
    if (
      this.snap_.state !== 'awaiting_authentication' ||
      this.snap_.busy ||
      !confirmation ||
      !authPrompt ||
      !this.session_
    ) {
      return;
    }
    const session = this.session_;
    let factors: Factor[];
    this.update_({ busy: true, error: undefined, notice: undefined });
    try {
      // The password's key takes a moment on an interpreter (iOS): the view turns busy first.
      if (inputs.some((i) => i && i.method === 'password')) await showBusy();
      factors = await this.buildFactors_(inputs, session.id, confirmation, authPrompt);
    } catch (error) {
      this.fail_('awaiting_authentication', error);
      return;
    }
    // The method a failure is about: a CVV is judged by the payment platform, never here.
    const judged = inputs.filter((i) => i.method !== 'cvv');
    const method = judged.length === 1 ? judged[0].method : undefined;
    const body = { challenge: authPrompt.challenge, factors };
    await this.step_(session, confirmation, 'awaiting_authentication', method, (key) =>
      this.client.authenticate(session.id, body, key),
    );
  }

  /** Convenience for the most common case: the 6-digit payment password. */
  payWithPassword(password: string): Promise<void> {
    return this.authenticate([{ method: 'password', password }]);
  }

  /** After a failure or at the entry: starts over with a fresh session (another card, another try). */
  async retry(): Promise<void> {
    await this.start();
    if (this.snap_.busy || this.snap_.state === 'processing') return;
    if (this.session_ && this.session_.state !== 'awaiting_order') {
      this.session_ = undefined;
      await this.forgetSession_();
    }
    this.update_({
      state: 'idle',
      sessionId: this.session_?.id,
      error: undefined,
      confirmation: undefined,
      authPrompt: undefined,
      payment: undefined,
    });
    this.prefetch_();
  }

  /**
   * Asks the platform again where a `processing` payment stands, and waits for it once more.
   * An unanswered question is shown, not reported as a `fail`: the payment may still succeed.
   */
  async refresh(): Promise<void> {
    await this.start();
    if (!this.session_ || this.snap_.state !== 'processing' || this.snap_.busy) return;
    this.update_({ busy: true, error: undefined });
    try {
      this.adopt_(await this.client.getSession(this.session_.id));
    } catch (error) {
      this.update_({ busy: false, stillProcessing: true, error: toCheckoutError(error) });
    }
  }

  /**
   * The user backs out: a live session is ended on the platform and the checkout returns to its
   * entry as `cancelled`, with a `cancel` event. Nothing happens while a step is in flight, or
   * once the payment is `processing` or made: that payment stands (its result shows when the
   * checkout is opened again), so it is never reported as cancelled.
   */
  async cancel(): Promise<void> {
    await this.start();
    const { state, busy } = this.snap_;
    if (busy || state === 'processing' || state === 'succeeded') return;
    const session = this.session_;
    if (session && BEFORE_PROCESSING.includes(session.state)) {
      try {
        await this.client.cancel(session.id, await this.client.newIdempotencyKey());
      } catch {
        // Best effort: an abandoned session expires on its own within its lifetime.
      }
      await this.forgetSession_();
    }
    this.session_ = undefined;
    this.update_({
      state: 'cancelled',
      busy: false,
      sessionId: undefined,
      error: undefined,
      confirmation: undefined,
      authPrompt: undefined,
      payment: undefined,
    });
    this.emit_('cancel', {});
  }

  /**
   * The shopper forgot the payment password (PROTOCOL.md §5.7): from the password prompt, after a
   * lock, or at the entry. The checkout waits in `resetting` for {@link Checkout.resetPassword};
   * {@link Checkout.cancelReset} goes back.
   */
  async forgotPassword(): Promise<void> {
    await this.start();
    const { state, busy } = this.snap_;
    if (busy || !this.credentials_) return;
    if (!['awaiting_authentication', 'failed', 'idle', 'cancelled'].includes(state)) return;
    this.resetFrom_ = state;
    this.update_({
      state: 'resetting',
      error: undefined,
      notice: undefined,
      resetCard: this.card_ ? this.snap_.confirmation?.card : undefined,
    });
  }

  /** Leaves the reset for where the shopper came from. */
  async cancelReset(): Promise<void> {
    await this.start();
    if (this.snap_.state !== 'resetting' || this.snap_.busy) return;
    this.update_({ state: this.resetFrom_ ?? 'idle', error: undefined, resetCard: undefined });
  }

  /**
   * Opens the scanner for the card that proves the cardholder in a reset. Resolves with what was
   * read, or undefined (the reason shown as the checkout's error).
   */
  async scanCard(): Promise<CardInput | undefined> {
    await this.start();
    if (this.snap_.state !== 'resetting' || this.snap_.busy) return undefined;
    const card = await this.scanOnce_(undefined, 'resetting');
    if (!card) return undefined;
    const read = parseCard(card.payload);
    if (!read.ok) {
      this.fail_('resetting', new CardPayError('invalid_card', read.message), {
        reason: read.reason,
        detected: read.detected,
      });
      return undefined;
    }
    return card;
  }

  /**
   * Sets a new payment password, proving the cardholder with a card bound to this terminal and
   * its CVV (PROTOCOL.md §5.7). `card` defaults to this session's card. On success the checkout
   * returns to where the shopper was, with a fresh prompt (the failure count and a lock are
   * cleared) and `notice: 'password_reset'`.
   */
  async resetPassword(input: {
    card?: CardInput;
    cvv: string;
    password: string;
    repeat: string;
  }): Promise<void> {
    await this.start();
    if (this.snap_.state !== 'resetting' || this.snap_.busy || !this.credentials_) return;
    const credentials = this.credentials_;
    this.update_({ busy: true, error: undefined });
    try {
      const card = input.card ?? this.card_;
      if (!card) throw new CardPayError('invalid_card', 'scan or type the card to reset with');
      if (!/^[0-9]{3,4}$/.test(input.cvv))
        throw new CardPayError('cvv_format', 'the CVV is the 3 or 4 digits on the card');
      checkNewPassword(input.password, input.repeat);
      await showBusy();
      const salt = await this.client.unique.bytes(16, 'salt');
      const iterations = Math.max(credentials.iterations, this.options_.iterations ?? 0);
      const key = derivePinKey(input.password, salt, iterations, credentials.suite);
      await this.client.resetPassword(
        { card, cvv: input.cvv, password: { salt: toHex(salt), iterations, key: toHex(key) } },
        await this.client.newIdempotencyKey(),
      );
      key.fill(0);
      this.credentials_ = { ...credentials, salt: toHex(salt), iterations };
      await storeCredentials(this.host_, this.client.baseUrl, this.credentials_);
    } catch (error) {
      this.fail_('resetting', error);
      return;
    }
    const from = this.resetFrom_;
    const session = this.session_;
    this.snap_ = { ...this.snap_, resetCard: undefined, notice: 'password_reset' };
    if (from === 'awaiting_authentication' && session) {
      // The same prompt, with the attempts the reset gave back.
      try {
        this.adopt_(await this.client.getSession(session.id));
        return;
      } catch {
        // Shown as the entry below: the shopper starts again.
      }
    }
    this.session_ = undefined;
    this.update_({
      state: 'idle',
      busy: false,
      confirmation: undefined,
      authPrompt: undefined,
      payment: undefined,
    });
  }

  /** Stops polling and drops every listener; the component calls it when detached. */
  destroy(): void {
    this.destroyed_ = true;
    this.removeAllListeners_();
  }

  // -------------------------------------------------------------------------------------------

  private async submitCard_(card: CardInput): Promise<void> {
    const read = parseCard(card.payload);
    if (!read.ok) {
      this.fail_('idle', new CardPayError('invalid_card', read.message), {
        reason: read.reason,
        detected: read.detected,
      });
      return;
    }
    this.update_({ state: 'awaiting_order', busy: true, error: undefined });
    try {
      let session = await this.ensureSession_();
      const body = { amount: this.snap_.amount ?? 0, currency: this.snap_.currency, card };
      let result;
      try {
        result = await this.client.submitOrder(
          session.id,
          body,
          await this.client.newIdempotencyKey(),
        );
      } catch (error) {
        // A session can lapse while the user lines up the camera: open a new one, once, unseen.
        if (!isCardPayError(error) || error.code !== 'session_expired') throw error;
        this.session_ = undefined;
        session = await this.ensureSession_();
        result = await this.client.submitOrder(
          session.id,
          body,
          await this.client.newIdempotencyKey(),
        );
      }
      session.state = result.state;
      this.card_ = card;
      this.update_({
        state: 'awaiting_confirmation',
        busy: false,
        sessionId: session.id,
        confirmation: result.confirmation,
      });
    } catch (error) {
      await this.afterError_(error, 'idle');
    }
  }

  private async answerConfirmation_(accept: boolean): Promise<void> {
    await this.start();
    const { confirmation } = this.snap_;
    if (
      this.snap_.state !== 'awaiting_confirmation' ||
      this.snap_.busy ||
      !confirmation?.confirmToken ||
      !this.session_
    )
      return;
    const session = this.session_;
    const body = { confirmToken: confirmation.confirmToken, accept };
    await this.step_(session, confirmation, 'awaiting_confirmation', undefined, (key) =>
      this.client.confirm(session.id, body, key),
    );
  }

  /** One step of a session under a fresh idempotency key: busy while in flight, then the answer adopted. */
  private async step_(
    session: LiveSession,
    confirmation: ConfirmationView,
    stayIn: CheckoutState,
    method: AuthMethod | undefined,
    send: (key: string) => Promise<Pick<SessionView, 'state' | 'authPrompt' | 'payment'>>,
  ): Promise<void> {
    if (!this.snap_.busy || this.snap_.error) this.update_({ busy: true, error: undefined });
    try {
      const result = await send(await this.client.newIdempotencyKey());
      this.adopt_({
        sessionId: session.id,
        state: result.state,
        expiresAt: new Date(session.expiresAt).toISOString(),
        confirmation,
        authPrompt: result.authPrompt,
        payment: result.payment,
      });
    } catch (error) {
      await this.afterError_(error, stayIn, method);
    }
  }

  private async buildFactors_(
    inputs: AuthInput[],
    sessionId: string,
    confirmation: ConfirmationView,
    prompt: AuthPrompt,
  ): Promise<Factor[]> {
    if (!Array.isArray(inputs) || inputs.length === 0) {
      throw new CardPayError('invalid_argument', 'authenticate expects at least one factor');
    }
    const factors: Factor[] = [];
    for (const input of inputs) {
      if (input.method === 'password') {
        if (!/^[0-9]{6}$/.test(input.password))
          throw new CardPayError('password_format', 'the payment password is exactly 6 digits');
        const credentials = this.credentials_;
        const salt = credentials && hexBytes(credentials.salt, 16);
        if (!credentials || !salt)
          throw new CardPayError('not_enrolled', 'this terminal has no payment password');
        const suite = credentials.suite;
        const pinKey = derivePinKey(input.password, salt, credentials.iterations, suite);
        factors.push({
          method: 'password',
          proof: passwordProof(
            pinKey,
            {
              sessionId,
              challenge: prompt.challenge,
              orderId: confirmation.orderId,
              amount: confirmation.amount,
              currency: confirmation.currency,
            },
            suite,
          ),
        });
        pinKey.fill(0);
      } else if (input.method === 'cvv') {
        if (!/^[0-9]{3,4}$/.test(input.cvv))
          throw new CardPayError('cvv_format', 'the CVV is the 3 or 4 digits on the card');
        factors.push({ method: 'cvv', value: input.cvv });
      } else if (input.method === 'biometric') {
        const provider = this.host_.biometric;
        const mode = input.mode ?? this.snap_.biometricModes[0];
        if (!provider || !mode)
          throw new CardPayError(
            'biometric_unavailable',
            'no biometric authenticator is lent by the host',
          );
        const assertion = await provider.authenticate(prompt.challenge, mode);
        factors.push({
          method: 'biometric',
          mode: assertion.mode,
          resultJSON: assertion.resultJSON,
          signature: assertion.signature,
          ...(assertion.resultJSONSignature
            ? { resultJSONSignature: assertion.resultJSONSignature }
            : {}),
        });
      } else {
        throw new CardPayError(
          'invalid_argument',
          `unknown authentication method ${JSON.stringify((input as { method?: unknown }).method)}`,
        );
      }
    }
    return factors;
  }

  /** One place that turns a platform's view of the session into the checkout's state. */
  private adopt_(view: SessionView, error?: CheckoutError): void {
    if (this.destroyed_) return; // an answer that arrives after the component left changes nothing
    const previous = this.session_;
    this.session_ = {
      id: view.sessionId,
      state: view.state,
      expiresAt: Date.parse(view.expiresAt),
      inputPort: view.inputPort ?? previous?.inputPort,
    };
    const order = view.order ? { amount: view.order.amount, currency: view.order.currency } : {};
    const base = {
      ...order,
      busy: false,
      stillProcessing: false,
      sessionId: view.sessionId,
      error,
    };
    switch (view.state) {
      case 'awaiting_order':
        this.update_({ ...base, state: 'idle' });
        return;
      case 'awaiting_confirmation':
        this.update_({
          ...base,
          state: view.state,
          confirmation: view.confirmation ?? this.snap_.confirmation,
        });
        return;
      case 'awaiting_authentication':
        this.update_({
          ...base,
          state: view.state,
          confirmation: view.confirmation ?? this.snap_.confirmation,
          authPrompt: view.authPrompt ?? this.snap_.authPrompt,
        });
        return;
      case 'processing':
        this.update_({
          ...base,
          state: view.state,
          confirmation: view.confirmation ?? this.snap_.confirmation,
          payment: view.payment,
        });
        void this.poll_();
        return;
      case 'succeeded':
        this.update_({
          ...base,
          state: view.state,
          confirmation: view.confirmation ?? this.snap_.confirmation,
          payment: view.payment,
          authPrompt: undefined,
        });
        void this.forgetSession_();
        if (view.payment) this.emit_('success', { payment: view.payment });
        return;
      default: {
        const failure =
          error ??
          (view.error
            ? toCheckoutError(
                new CardPayError(view.error.code as CardPayErrorCode, view.error.message, {
                  retryable: view.error.retryable,
                  details: view.error.declineCode ? { declineCode: view.error.declineCode } : {},
                }),
              )
            : undefined);
        this.update_({ ...base, state: view.state, error: failure, authPrompt: undefined });
        void this.forgetSession_();
        if (view.state === 'cancelled') this.emit_('cancel', {});
        else if (failure) this.emit_('fail', { error: failure });
      }
    }
  }

  /** Handles an action's error: expected outcomes become states; a lost answer is recovered from the platform. */
  private async afterError_(
    error: unknown,
    stayIn: CheckoutState,
    method?: AuthMethod,
  ): Promise<void> {
    const e = toCheckoutError(error);
    if (e.code === 'auth_failed' && method) e.method = method;
    const details = isCardPayError(error) ? error.details : {};
    const session = this.session_;
    if (
      session &&
      (LOST_ANSWER.includes(e.code) ||
        e.code === 'challenge_stale' ||
        e.code === 'confirm_token_invalid')
    ) {
      try {
        const view = await this.client.getSession(session.id);
        if (view.state !== session.state || e.code === 'challenge_stale') {
          this.adopt_(view, e.code === 'challenge_stale' ? e : undefined);
          if (e.code === 'challenge_stale') this.emit_('fail', { error: e });
          return;
        }
      } catch {
        // Fall through: report the original error.
      }
    }
    switch (e.code) {
      case 'auth_failed':
      case 'order_payment_in_progress':
        // Still awaiting authentication, with the fresh prompt the platform sent.
        this.update_({
          state: 'awaiting_authentication',
          busy: false,
          authPrompt: (details.authPrompt as AuthPrompt | undefined) ?? this.snap_.authPrompt,
          error: e,
        });
        this.emit_('fail', { error: e });
        return;
      case 'auth_locked':
      case 'payment_declined':
      case 'order_already_paid':
        if (session) session.state = 'failed';
        this.adopt_(
          { sessionId: session?.id ?? '', state: 'failed', expiresAt: new Date().toISOString() },
          e,
        );
        return;
      case 'session_expired':
        if (session) session.state = 'expired';
        this.adopt_(
          { sessionId: session?.id ?? '', state: 'expired', expiresAt: new Date().toISOString() },
          e,
        );
        return;
      case 'terminal_unknown':
        await this.forgetTerminal_();
        this.fail_('idle', error);
        return;
      default:
        this.fail_(stayIn, error);
    }
  }

  private fail_(state: CheckoutState, error: unknown, extra: Partial<CheckoutError> = {}): void {
    const e = { ...toCheckoutError(error), ...extra };
    this.update_({ state, busy: false, error: e });
    this.emit_('fail', { error: e });
  }

  private async poll_(): Promise<void> {
    if (this.polling_ || !this.session_) return;
    this.polling_ = true;
    const sessionId = this.session_.id;
    const deadline = this.now_() + (this.options_.pollTimeoutMs ?? 60000);
    try {
      while (!this.destroyed_ && this.now_() < deadline) {
        await this.sleep_(this.options_.pollIntervalMs ?? 1000);
        if (this.destroyed_ || this.session_?.id !== sessionId) return;
        let view: SessionView;
        try {
          view = await this.client.getSession(sessionId);
        } catch {
          continue; // keep asking until the deadline; the payment is not lost by a failed poll
        }
        if (view.state !== 'processing') {
          this.polling_ = false;
          this.adopt_(view);
          return;
        }
      }
      if (!this.destroyed_ && this.session_?.id === sessionId)
        this.update_({ stillProcessing: true });
    } finally {
      this.polling_ = false;
    }
  }

  private prefetch_(): void {
    if (!this.credentials_ || this.prefetching_) return;
    this.prefetching_ = this.ensureSession_()
      .catch(() => undefined) // surfaced when the user taps, through ensureSession again
      .then(() => {
        this.prefetching_ = undefined;
      });
  }

  /** A live session in `awaiting_order` with time to spare, made now if the prefetched one is gone. */
  private async ensureSession_(): Promise<LiveSession> {
    if (this.prefetching_) await this.prefetching_;
    const s = this.session_;
    if (s && s.state === 'awaiting_order' && s.expiresAt - this.now_() > SESSION_MARGIN_MS)
      return s;
    const key = await this.client.newIdempotencyKey();
    const created = await this.client.createSession(
      {
        merchantId: this.options_.merchantId,
        ...(this.options_.orderRef ? { orderRef: this.options_.orderRef } : {}),
      },
      key,
    );
    this.session_ = {
      id: created.sessionId,
      state: created.state,
      expiresAt: Date.parse(created.expiresAt),
      inputPort: created.inputPort,
    };
    if (created.order) {
      // The merchant order's amount wins over the property.
      this.snap_ = {
        ...this.snap_,
        amount: created.order.amount,
        currency: created.order.currency,
        description: this.snap_.description ?? created.order.description,
      };
    }
    await this.host_.storage.set(this.sessionKey_(), created.sessionId).catch(() => undefined);
    return this.session_;
  }

  /**
   * Where the session id kept from an earlier visit stands. Forgotten only on an answer that proves
   * it is over (cancelled, expired, unknown); when the platform cannot be asked the id is kept,
   * since it may be a payment still going on.
   */
  private async resumeStored_(): Promise<
    { kind: 'none' | 'adopted' } | { kind: 'unreachable'; error: unknown }
  > {
    if (this.session_ || !this.credentials_) return { kind: 'none' };
    const stored = await this.host_.storage.get(this.sessionKey_());
    if (!stored) return { kind: 'none' };
    try {
      const view = await this.client.getSession(stored);
      if (view.state !== 'cancelled' && view.state !== 'expired') {
        this.adopt_(view);
        return { kind: 'adopted' };
      }
    } catch (error) {
      const code = isCardPayError(error) ? error.code : 'internal_error';
      if (code === 'terminal_unknown') await this.forgetTerminal_();
      else if (code !== 'session_not_found') return { kind: 'unreachable', error };
    }
    await this.forgetSession_();
    return { kind: 'none' };
  }

  private async biometricModes_(): Promise<BiometricMode[]> {
    const provider = this.host_.biometric;
    if (!provider || this.credentials_?.biometricScheme !== provider.scheme) return [];
    try {
      return await provider.available();
    } catch {
      return [];
    }
  }

  private sessionKey_(): string {
    return `cardpay.session.${sha256Hex(this.client.baseUrl).slice(0, 16)}.${this.options_.orderRef ?? '_open'}`;
  }

  private async forgetSession_(): Promise<void> {
    await this.host_.storage.remove(this.sessionKey_()).catch(() => undefined);
  }

  private async forgetTerminal_(): Promise<void> {
    await clearCredentials(this.host_, this.client.baseUrl).catch(() => undefined);
    this.credentials_ = undefined;
    this.client.identity = undefined;
    this.session_ = undefined;
    this.snap_ = { ...this.snap_, enrolled: false };
  }

  private now_(): number {
    return this.host_.now ? this.host_.now() : Date.now();
  }

  private update_(patch: Partial<CheckoutSnapshot>): void {
    if (this.destroyed_) return;
    const previous = this.snap_;
    this.snap_ = { ...previous, ...patch };
    this.emit_('change', this.snap_);
    if (previous.state !== this.snap_.state) this.emit_('statechange', { state: this.snap_.state });
  }
}

/**
 * Lets the view show a state before work that holds the thread (a password's key derivation):
 * the `change` just emitted becomes a `setData`, and its rendering is not left waiting.
 */
function showBusy(): Promise<void> {
  return delay(0);
}

/** Refuses a merchant id or order reference that cannot be one, saying what arrived. */
export function assertId(
  field: string,
  prefix: 'mch' | 'mor',
  value: unknown,
): asserts value is string {
  if (typeof value !== 'string' || !new RegExp(idPattern(prefix)).test(value)) {
    throw new CardPayError(
      'config_invalid',
      `${field} must look like "${prefix}_…", got ${JSON.stringify(value)}`,
    );
  }
}

/** Normalises anything thrown into the error the UI and events carry. Never leaks a stack. */
export function toCheckoutError(error: unknown): CheckoutError {
  if (isCardPayError(error)) {
    const out: CheckoutError = {
      code: error.code,
      message: error.message,
      retryable: error.retryable,
    };
    const declineCode = error.details.declineCode;
    if (typeof declineCode === 'string') out.declineCode = declineCode;
    const prompt = error.details.authPrompt as AuthPrompt | undefined;
    if (prompt && typeof prompt.attemptsLeft === 'number') out.attemptsLeft = prompt.attemptsLeft;
    return out;
  }
  return {
    code: 'internal_error',
    message: 'an unexpected error occurred in the checkout',
    retryable: true,
  };
}

/** Creates a checkout without UI, for merchants who draw their own. */
export function createCheckout(options: CheckoutOptions): Checkout {
  return new Checkout(options);
}

/** Refuses a suite the protocol does not name (§3.1); undefined means the default. */
export function assertSuite(value: unknown): asserts value is Suite | undefined {
  if (value !== undefined && !SUITES.includes(value as Suite)) {
    throw new CardPayError(
      'config_invalid',
      `suite must be ${SUITES.join(' or ')}, got ${JSON.stringify(value)}`,
    );
  }
}
