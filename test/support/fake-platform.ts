import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { HostRequest, HostResponse } from '../../packages/sdk/src/core/host';

// A trading platform written from PROTOCOL.md for the SDK's unit tests: in memory, no HTTP,
// its own crypto through node:crypto, so the core's signing is checked against an independent
// implementation. Faults are scripted: lose an answer after acting, tamper with one, skew the clock.

interface Terminal {
  id: string;
  secret: Buffer;
  pinKey: Buffer;
  failures: number;
  lockedUntil: number;
}

interface Session {
  id: string;
  terminalId: string;
  state: string;
  expiresAt: number;
  amount?: number;
  currency?: string;
  orderId?: string;
  pan?: string;
  confirmToken?: string;
  challenge?: string;
  attemptsLeft: number;
  payment?: Record<string, unknown>;
  error?: Record<string, unknown>;
  processingUntil?: number;
}

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const hmacHex = (key: Buffer, text: string) =>
  createHmac('sha256', key).update(text, 'utf8').digest('hex');
const iso = (ms: number) => new Date(ms).toISOString();

export class FakePlatform {
  readonly terminals = new Map<string, Terminal>();
  readonly sessions = new Map<string, Session>();
  readonly idempotency = new Map<string, { fingerprint: string; status: number; body: string }>();
  readonly requests: HostRequest[] = [];
  nowMs = Date.parse('2026-11-27T18:00:00.000Z');
  /** Server clock minus the terminal's. */
  serverSkewMs = 0;
  /** The next N answers are lost after the platform acted (the terminal sees a network error). */
  loseAnswers = 0;
  /** The next answer has its body altered in flight. */
  tamperNext = false;
  /** The next N requests fail with 503 before acting. */
  unavailable = 0;
  /** How many polls a `processing` payment takes to settle. */
  processingPolls = 2;
  history = 0;
  private seq = 0;

  readonly baseUrl = 'https://platform.test';

  now = () => this.nowMs;

  /** A Host.request that talks to this platform. */
  request = async (req: HostRequest): Promise<HostResponse> => {
    this.requests.push(req);
    if (this.unavailable > 0) {
      this.unavailable--;
      return this.answer(req, 503, {
        error: { code: 'internal_error', message: 'unavailable', retryable: true },
      });
    }
    const res = this.handle(req);
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw Object.assign(new Error('connection reset'), { kind: 'network' });
    }
    if (this.tamperNext) {
      this.tamperNext = false;
      // Same meaning, different bytes: only the signature can tell.
      const text = Buffer.from(res.body)
        .toString('utf8')
        .replace(/^\{"(\w+)":/, '{"$1" :');
      return { ...res, body: new Uint8Array(Buffer.from(text)) };
    }
    return res;
  };

  private id(prefix: string) {
    return `${prefix}_${(++this.seq).toString(36)}${randomBytes(4).toString('hex')}`;
  }

  private answer(
    req: HostRequest,
    status: number,
    body: unknown,
    terminal?: Terminal,
  ): HostResponse {
    const text = JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (terminal) {
      const ts = String(Math.floor((this.nowMs + this.serverSkewMs) / 1000));
      const nonce = req.headers['x-cardpay-nonce'];
      headers['x-cardpay-timestamp'] = ts;
      headers['x-cardpay-signature'] = hmacHex(
        terminal.secret,
        [status, ts, nonce, sha(text)].join('\n'),
      );
    }
    return { status, headers, body: new Uint8Array(Buffer.from(text)) };
  }

  private error(
    code: string,
    status: number,
    extra: Record<string, unknown> = {},
    retryable = false,
  ) {
    return {
      status,
      body: { error: { code, message: code.replace(/_/g, ' '), retryable }, ...extra },
    };
  }

  private handle(req: HostRequest): HostResponse {
    const path = req.url.slice(this.baseUrl.length);
    const body = req.body ? JSON.parse(req.body) : undefined;
    if (req.method === 'POST' && path === '/v1/terminals') {
      const id = this.id('trm');
      const secret = randomBytes(32);
      this.terminals.set(id, {
        id,
        secret,
        pinKey: Buffer.from(body.password.key, 'hex'),
        failures: 0,
        lockedUntil: 0,
      });
      return this.answer(req, 201, {
        terminalId: id,
        terminalSecret: secret.toString('hex'),
        createdAt: iso(this.nowMs),
      });
    }
    const terminal = this.terminals.get(req.headers['x-cardpay-terminal'] ?? '');
    if (!terminal) return this.answer(req, 401, this.error('terminal_unknown', 401).body);
    const ts = Number(req.headers['x-cardpay-timestamp']);
    if (!Number.isFinite(ts) || Math.abs(ts * 1000 - (this.nowMs + this.serverSkewMs)) > 300000) {
      const e = this.error('timestamp_skew', 401);
      return this.answer(req, e.status, e.body, terminal);
    }
    const canonical = [
      req.method,
      path,
      req.headers['x-cardpay-timestamp'],
      req.headers['x-cardpay-nonce'],
      sha(req.body ?? ''),
    ].join('\n');
    const expected = Buffer.from(hmacHex(terminal.secret, canonical), 'hex');
    const given = Buffer.from(req.headers['x-cardpay-signature'] ?? '', 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      const e = this.error('signature_invalid', 401);
      return this.answer(req, e.status, e.body, terminal);
    }
    const key = req.headers['idempotency-key'];
    const fingerprint = `${req.method} ${path} ${sha(req.body ?? '')}`;
    if (req.method === 'POST' && key) {
      const seen = this.idempotency.get(`${terminal.id}:${key}`);
      if (seen) {
        if (seen.fingerprint !== fingerprint) {
          const e = this.error('idempotency_conflict', 409);
          return this.answer(req, e.status, e.body, terminal);
        }
        return this.answer(req, seen.status, JSON.parse(seen.body), terminal);
      }
    }
    const { status, body: out } = this.route(req.method, path, body, terminal);
    if (req.method === 'POST' && key)
      this.idempotency.set(`${terminal.id}:${key}`, {
        fingerprint,
        status,
        body: JSON.stringify(out),
      });
    return this.answer(req, status, out, terminal);
  }

  private route(
    method: string,
    path: string,
    body: any,
    terminal: Terminal,
  ): { status: number; body: any } {
    if (method === 'POST' && path === '/v1/sessions') {
      const s: Session = {
        id: this.id('ses'),
        terminalId: terminal.id,
        state: 'awaiting_order',
        expiresAt: this.nowMs + 900000,
        attemptsLeft: 5,
      };
      this.sessions.set(s.id, s);
      return {
        status: 201,
        body: {
          sessionId: s.id,
          state: s.state,
          expiresAt: iso(s.expiresAt),
          inputPort: {
            methods: ['scan', 'manual'],
            scanTypes: ['qrCode', 'barCode'],
            formats: ['pan', 'emv-cpm'],
          },
        },
      };
    }
    const m = /^\/v1\/sessions\/(ses_\w+)(\/\w+)?$/.exec(path);
    const s = m && this.sessions.get(m[1]);
    if (!m || !s || s.terminalId !== terminal.id) return this.error('session_not_found', 404);
    if (s.state.startsWith('awaiting') && this.nowMs > s.expiresAt) s.state = 'expired';
    const action = m[2] ?? '';
    if (method === 'GET' && action === '') {
      if (s.state === 'processing' && --this.processingPolls <= 0) s.state = 'succeeded';
      return { status: 200, body: this.view(s) };
    }
    if (s.state === 'expired') return this.error('session_expired', 410);
    const wrongState = (want: string) =>
      s.state !== want ? this.error('invalid_state', 409, { state: s.state }) : null;
    if (action === '/order') {
      const bad = wrongState('awaiting_order');
      if (bad) return bad;
      const pan = String(body.card.payload).replace(/[ -]/g, '');
      s.pan = pan;
      s.amount = body.amount;
      s.currency = body.currency;
      s.orderId = this.id('ord');
      s.confirmToken = randomBytes(16).toString('hex');
      s.state = 'awaiting_confirmation';
      return {
        status: 200,
        body: { sessionId: s.id, state: s.state, confirmation: this.confirmation(s) },
      };
    }
    if (action === '/confirm') {
      const bad = wrongState('awaiting_confirmation');
      if (bad) return bad;
      if (body.confirmToken !== s.confirmToken) return this.error('confirm_token_invalid', 422);
      if (!body.accept) {
        s.state = 'cancelled';
        return { status: 200, body: { sessionId: s.id, state: s.state } };
      }
      s.state = 'awaiting_authentication';
      s.challenge = randomBytes(32).toString('hex');
      return { status: 200, body: { sessionId: s.id, state: s.state, authPrompt: this.prompt(s) } };
    }
    if (action === '/cancel') {
      s.state = 'cancelled';
      return { status: 200, body: this.view(s) };
    }
    if (action === '/authenticate') {
      const bad = wrongState('awaiting_authentication');
      if (bad) return bad;
      if (terminal.lockedUntil > this.nowMs) return this.error('auth_locked', 423);
      if (body.challenge !== s.challenge) return this.error('challenge_stale', 422);
      const factor = body.factors[0];
      const message = ['cardpay-auth-v1', s.id, s.challenge, s.orderId, s.amount, s.currency].join(
        '\n',
      );
      const ok =
        factor.method === 'password'
          ? factor.proof === hmacHex(terminal.pinKey, message)
          : factor.method === 'cvv'
            ? /^\d{3,4}$/.test(factor.value)
            : false;
      if (!ok) {
        terminal.failures++;
        if (terminal.failures >= 5) {
          terminal.lockedUntil = this.nowMs + 900000;
          s.state = 'failed';
          s.error = { code: 'auth_locked', message: 'locked', retryable: false };
          return this.error('auth_locked', 423);
        }
        s.attemptsLeft--;
        s.challenge = randomBytes(32).toString('hex');
        return this.error('auth_failed', 422, { state: s.state, authPrompt: this.prompt(s) }, true);
      }
      terminal.failures = 0;
      if (s.pan === '4000000000000002') {
        s.state = 'failed';
        s.error = {
          code: 'payment_declined',
          message: 'declined',
          retryable: false,
          declineCode: 'card_declined',
        };
        return this.error('payment_declined', 402, { declineCode: 'card_declined' });
      }
      const rateBps = this.history >= 100000 ? 200 : 0;
      const amountOff = Math.floor((s.amount! * rateBps) / 10000);
      s.payment = {
        paymentId: this.id('pay'),
        orderId: s.orderId,
        amount: s.amount,
        discount: { rateBps, amountOff },
        charged: s.amount! - amountOff,
        currency: s.currency,
      };
      s.state = s.pan === '6222021000000000017' ? 'processing' : 'succeeded';
      return { status: 200, body: { sessionId: s.id, state: s.state, payment: s.payment } };
    }
    return this.error('not_found', 404);
  }

  private confirmation(s: Session) {
    const pan = s.pan!;
    return {
      orderId: s.orderId,
      amount: s.amount,
      currency: s.currency,
      card: {
        brand: 'visa',
        last4: pan.slice(-4),
        masked: pan.slice(0, 6) + '*'.repeat(pan.length - 10) + pan.slice(-4),
      },
      confirmToken: s.confirmToken,
    };
  }

  private prompt(s: Session) {
    return {
      challenge: s.challenge,
      methods: ['password', 'cvv'],
      required: 1,
      attemptsLeft: s.attemptsLeft,
      expiresAt: iso(s.expiresAt),
    };
  }

  private view(s: Session) {
    return {
      sessionId: s.id,
      state: s.state,
      expiresAt: iso(s.expiresAt),
      ...(s.orderId ? { confirmation: this.confirmation(s) } : {}),
      ...(s.state === 'awaiting_authentication' ? { authPrompt: this.prompt(s) } : {}),
      ...(s.payment ? { payment: s.payment } : {}),
      ...(s.error ? { error: s.error } : {}),
    };
  }
}
