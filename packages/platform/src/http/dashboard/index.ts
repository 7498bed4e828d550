import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { currencyExponent, formatAmount, type MerchantOrder } from 'cardpay';
import type { Ctx } from '../../domain/context';
import { redeliver } from '../../domain/notifications';
import { createRefund, orderView } from '../../domain/refunds';
import { dayBounds, statementLines, zonedTime } from '../../domain/statements';
import type { MerchantConfig } from '../../infra/config';
import { ApiError } from '../../infra/errors';
import { hexEqual, sha256 } from '../../infra/secrets';
import type { EventRow } from '../../store/types';
import {
  badge,
  brandName,
  dataTable,
  html,
  Html,
  layout,
  STYLE,
  wordsFor,
  type Chrome,
  type Lang,
} from './page';

// The merchant dashboard (INTERFACES.md §1): what a merchant's staff use every day in a browser.
// A merchant signs in with its API key; the session is a cookie signed with a key derived from the
// master key (any instance checks it), HttpOnly and SameSite=Strict, Secure off loopback; every
// change is a form carrying the session's CSRF token. Pages are made on the server, with a
// Content-Security-Policy that allows no script and nothing from another origin.

const SESSION = 'cp_session';
const PRE = 'cp_pre';
const LANG = 'cp_lang';
const SESSION_MS = 8 * 3600 * 1000;
const SIGN_INS_PER_MINUTE = 10;

const CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

interface Session {
  merchant: MerchantConfig;
  nonce: string;
  csrf: string;
}

function cookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0) out[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return out;
}

function hostOf(req: FastifyRequest): string {
  return String(req.headers.host ?? '');
}

function loopback(req: FastifyRequest): boolean {
  const name = hostOf(req)
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\./.test(name);
}

function cookie(req: FastifyRequest, name: string, value: string, maxAgeS: number): string {
  return [
    `${name}=${value}`,
    'Path=/dashboard',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${maxAgeS}`,
    ...(loopback(req) ? [] : ['Secure']),
  ].join('; ');
}

export async function dashboardRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const mac = (data: string) => ctx.sealer.dashboardMac(data);

  const keyMark = (merchant: MerchantConfig) => mac(`key\n${merchant.apiKeySha256}`).slice(0, 16);

  const sessionOf = (req: FastifyRequest): Session | undefined => {
    const raw = cookies(req)[SESSION];
    const dot = raw ? raw.lastIndexOf('.') : -1;
    if (!raw || dot < 0) return undefined;
    const payload = raw.slice(0, dot);
    if (!hexEqual(mac(`session\n${payload}`), raw.slice(dot + 1))) return undefined;
    let body: { m?: string; e?: number; n?: string; k?: string };
    try {
      body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof body;
    } catch {
      return undefined;
    }
    const merchant = ctx.config.merchants.find((m) => m.id === body.m);
    if (!merchant || typeof body.e !== 'number' || body.e < ctx.now() || !body.n) return undefined;
    // Made under the merchant's current key: a new key ends every session made with the old one.
    if (body.k !== keyMark(merchant)) return undefined;
    return { merchant, nonce: body.n, csrf: mac(`csrf\n${body.n}`).slice(0, 32) };
  };

  const langOf = (req: FastifyRequest, reply: FastifyReply): Lang => {
    const asked = (req.query as { lang?: string }).lang;
    if (asked === 'en' || asked === 'zh') {
      reply.header('set-cookie', cookie(req, LANG, asked, 365 * 86400));
      return asked;
    }
    const kept = cookies(req)[LANG];
    if (kept === 'en' || kept === 'zh') return kept;
    return /^en\b/i.test(String(req.headers['accept-language'] ?? '')) ? 'en' : 'zh';
  };

  const selfOf = (req: FastifyRequest) =>
    req.url.replace(/([?&])lang=(en|zh)&?/, '$1').replace(/[?&]$/, '');

  const chromeOf = (
    req: FastifyRequest,
    reply: FastifyReply,
    session: Session | undefined,
    current?: Chrome['current'],
  ): Chrome => {
    const lang = langOf(req, reply);
    return {
      lang,
      t: wordsFor(lang),
      ...(session ? { merchant: session.merchant.name, csrf: session.csrf } : {}),
      ...(current ? { current } : {}),
      self: selfOf(req),
    };
  };

  const page = (reply: FastifyReply, chrome: Chrome, title: string, body: Html, status = 200) =>
    reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(layout(chrome, title, body));

  /** The signed-in merchant, or a redirect to the sign-in page (then undefined). */
  const signedIn = (req: FastifyRequest, reply: FastifyReply): Session | undefined => {
    const session = sessionOf(req);
    if (!session) void reply.redirect('/dashboard/sign-in', 303);
    return session;
  };

  /**
   * A change: the session's CSRF token in the form and, when the browser says where the form came
   * from, this very site. Anything else is refused before it acts.
   */
  const changeAllowed = (req: FastifyRequest, session: Session): boolean => {
    const origin = req.headers.origin;
    if (typeof origin === 'string' && origin !== 'null') {
      try {
        if (new URL(origin).host !== hostOf(req)) return false;
      } catch {
        return false;
      }
    }
    const form = (req.body ?? {}) as Record<string, string>;
    return typeof form.csrf === 'string' && hexEqual(session.csrf, form.csrf);
  };

  const refused = (req: FastifyRequest, reply: FastifyReply, session?: Session) => {
    const chrome = chromeOf(req, reply, session);
    return page(
      reply,
      chrome,
      chrome.t.refused,
      html`<p class="alert" role="alert">${chrome.t.refused}</p>`,
      403,
    );
  };

  const money = (amount: number, currency: string) => formatAmount(amount, currency);
  const time = (iso: string | number) =>
    zonedTime(typeof iso === 'number' ? iso : Date.parse(iso), ctx.config.statementTimeZone)
      .slice(0, 19)
      .replace('T', ' ');
  const today = () => zonedTime(ctx.now(), ctx.config.statementTimeZone).slice(0, 10);

  await app.register(
    async (scope) => {
      // Forms arrive URL-encoded; nothing else is taken here.
      scope.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: 16 * 1024 },
        (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
      );
      scope.addHook('onSend', async (_req, reply) => {
        reply.header('content-security-policy', CSP);
        reply.header('x-content-type-options', 'nosniff');
        reply.header('x-frame-options', 'DENY');
        reply.header('referrer-policy', 'same-origin');
      });
      scope.setNotFoundHandler((req, reply) => {
        const chrome = chromeOf(req, reply, sessionOf(req));
        return page(
          reply,
          chrome,
          chrome.t.notFound,
          html`<p class="alert">${chrome.t.notFound}</p>`,
          404,
        );
      });
      scope.setErrorHandler((error, req, reply) => {
        const chrome = chromeOf(req, reply, sessionOf(req));
        const known = error instanceof ApiError && error.status < 500;
        if (!known)
          ctx.log.error({ event: 'dashboard_error', err: error }, 'a dashboard page failed');
        const status = error instanceof ApiError ? error.status : 500;
        const text = status === 404 ? chrome.t.notFound : chrome.t.somethingWrong;
        return page(reply, chrome, text, html`<p class="alert" role="alert">${text}</p>`, status);
      });

      scope.get('/assets/app.css', async (_req, reply) =>
        reply.type('text/css; charset=utf-8').send(STYLE),
      );

      scope.get('/', async (req, reply) =>
        reply.redirect(sessionOf(req) ? '/dashboard/orders' : '/dashboard/sign-in', 303),
      );

      // ---- sign-in and sign-out ------------------------------------------------------------

      const signInPage = (
        req: FastifyRequest,
        reply: FastifyReply,
        problem?: string,
        status = 200,
      ) => {
        // A login form's CSRF: a random value both in a cookie of this site and in the form.
        const pre = randomBytes(16).toString('hex');
        reply.header('set-cookie', cookie(req, PRE, pre, 600));
        const chrome = chromeOf(req, reply, undefined);
        const { t } = chrome;
        return page(
          reply,
          chrome,
          t.signInTitle,
          html`<div class="signin card">
            <h1>${t.signInTitle}</h1>
            ${problem ? html`<p class="alert" role="alert">${problem}</p>` : ''}
            <form method="post" action="/dashboard/sign-in">
              <input type="hidden" name="csrf" value="${pre}" />
              <label for="key"
                >${t.apiKey}
                <input
                  id="key"
                  name="key"
                  type="password"
                  autocomplete="current-password"
                  required
                  aria-describedby="key-hint"
                />
              </label>
              <span id="key-hint" class="muted">${t.apiKeyHint}</span>
              <button type="submit">${t.signIn}</button>
            </form>
          </div>`,
          status,
        );
      };

      scope.get('/sign-in', async (req, reply) => signInPage(req, reply));

      scope.post('/sign-in', async (req, reply) => {
        const t = wordsFor(langOf(req, reply));
        const form = (req.body ?? {}) as Record<string, string>;
        const pre = cookies(req)[PRE];
        if (!pre || typeof form.csrf !== 'string' || !hexEqual(pre, form.csrf))
          return refused(req, reply);
        const limit = await ctx.store.takeRateLimit(
          `dashboard-sign-in:${req.ip}`,
          ctx.now(),
          SIGN_INS_PER_MINUTE,
          60000,
        );
        if (!limit.allowed) {
          ctx.log.warn(
            { event: 'dashboard_sign_ins_capped', security: true, address: req.ip },
            'too many dashboard sign-ins from one address',
          );
          reply.header('retry-after', String(Math.max(1, Math.ceil(limit.retryAfterMs / 1000))));
          return signInPage(req, reply, t.tooManySignIns, 429);
        }
        const digest = typeof form.key === 'string' ? sha256(form.key) : '';
        let merchant: MerchantConfig | undefined;
        for (const m of ctx.config.merchants)
          if (hexEqual(m.apiKeySha256, digest || '00')) merchant = m;
        if (!merchant) return signInPage(req, reply, t.wrongKey, 401);
        const payload = Buffer.from(
          JSON.stringify({
            m: merchant.id,
            k: keyMark(merchant),
            e: ctx.now() + SESSION_MS,
            n: randomBytes(16).toString('hex'),
          }),
        ).toString('base64url');
        ctx.log.info(
          { event: 'dashboard_signed_in', merchantId: merchant.id },
          'a merchant signed in',
        );
        return reply
          .header('set-cookie', [
            cookie(req, SESSION, `${payload}.${mac(`session\n${payload}`)}`, SESSION_MS / 1000),
            cookie(req, PRE, '', 0),
          ])
          .redirect('/dashboard/orders', 303);
      });

      scope.post('/sign-out', async (req, reply) => {
        const session = sessionOf(req);
        if (session && !changeAllowed(req, session)) return refused(req, reply, session);
        return reply
          .header('set-cookie', cookie(req, SESSION, '', 0))
          .redirect('/dashboard/sign-in', 303);
      });

      // ---- orders ----------------------------------------------------------------------------

      scope.get('/orders', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        const chrome = chromeOf(req, reply, session, 'orders');
        const { t, lang } = chrome;
        const q = req.query as Record<string, string | undefined>;
        const status = ['open', 'paid', 'failed', 'partially_refunded', 'refunded'].includes(
          q.status ?? '',
        )
          ? q.status
          : undefined;
        const zone = ctx.config.statementTimeZone;
        const from = q.from && dayBounds(q.from, zone);
        const to = q.to && dayBounds(q.to, zone);
        const search = (q.q ?? '').trim();
        let before: { createdAt: string; orderRef: string } | undefined;
        if (q.cursor) {
          const [createdAt, orderRef] = Buffer.from(q.cursor, 'base64url')
            .toString('utf8')
            .split('|');
          if (createdAt && /^mor_\w+$/.test(orderRef ?? '')) before = { createdAt, orderRef };
        }
        const limit = 25;
        const rows = await ctx.store.listMerchantOrders({
          merchantId: session.merchant.id,
          ...(status ? { status } : {}),
          ...(from ? { from: new Date(from.from).toISOString() } : {}),
          ...(to ? { to: new Date(to.from).toISOString() } : {}),
          ...(search ? { merchantOrderId: search } : {}),
          ...(before ? { before } : {}),
          limit,
        });
        const last = rows[rows.length - 1];
        const keep = (extra: Record<string, string>) =>
          `/dashboard/orders?${new URLSearchParams({
            ...(status ? { status } : {}),
            ...(q.from ? { from: q.from } : {}),
            ...(q.to ? { to: q.to } : {}),
            ...(search ? { q: search } : {}),
            ...extra,
          })}`;
        const statusOption = (value: string, label: string) =>
          html`<option
            value="${value}"
            ${status === value || (!status && !value) ? new Html(' selected') : ''}
          >
            ${label}
          </option>`;
        return page(
          reply,
          chrome,
          t.orders,
          html`<h1>${t.orders}</h1>
            <form method="get" action="/dashboard/orders" class="card filters" role="search">
              <label for="f-status"
                >${t.status}
                <select id="f-status" name="status">
                  ${statusOption('', t.all)}
                  ${['open', 'paid', 'failed', 'partially_refunded', 'refunded'].map((s) => statusOption(s, badge(s, lang).text.replace(/<[^>]+>/g, '')))}
                </select>
              </label>
              <label for="f-from"
                >${t.from}<input id="f-from" name="from" type="date" value="${q.from ?? ''}"
              /></label>
              <label for="f-to"
                >${t.to}<input id="f-to" name="to" type="date" value="${q.to ?? ''}"
              /></label>
              <label for="f-q"
                >${t.search}<input id="f-q" name="q" type="search" value="${search}"
              /></label>
              <button type="submit">${t.filter}</button>
            </form>
            ${dataTable(
              [[t.search], [t.status], [t.amount, 'num'], [t.created], [t.order, 'muted']],
              rows.map((r) => [
                html`<a href="/dashboard/orders/${r.orderRef}">${r.merchantOrderId}</a>`,
                badge(r.status, lang),
                money(r.amount, r.currency),
                time(r.createdAt),
                r.orderRef,
              ]),
              html`<p class="card muted">${t.noOrders}</p>`,
              t.orders,
            )}
            <p class="pager">
              ${before ? html`<a href="${keep({})}">${t.first}</a>` : ''}
              ${rows.length === limit && last ? html`<a href="${keep({ cursor: Buffer.from(`${last.createdAt}|${last.orderRef}`).toString('base64url') })}" rel="next">${t.next}</a>` : ''}
            </p>
            <p class="muted">${t.timeZone}: ${ctx.config.statementTimeZone}</p>`,
        );
      });

      const ownOrder = async (session: Session, orderRef: string): Promise<MerchantOrder> => {
        const row = /^mor_\w{1,60}$/.test(orderRef)
          ? await ctx.store.getMerchantOrder(orderRef)
          : undefined;
        if (!row || row.merchantId !== session.merchant.id)
          throw new ApiError(404, 'order_unknown', 'no such order');
        return orderView(ctx, row);
      };

      /** The events that carry this order, from the merchant's newest pages. */
      const eventsOf = async (merchantId: string, orderRef: string): Promise<EventRow[]> => {
        const found: EventRow[] = [];
        let after: string | undefined;
        for (let page = 0; page < 10; page++) {
          const rows = await ctx.store.listEvents(merchantId, after, 200);
          for (const e of rows) if (e.body.includes(`"orderRef":"${orderRef}"`)) found.push(e);
          if (rows.length < 200) break;
          after = rows[rows.length - 1].id;
        }
        return found;
      };

      const orderPage = async (
        req: FastifyRequest,
        reply: FastifyReply,
        session: Session,
        orderRef: string,
        message?: { kind: 'notice' | 'alert'; text: string },
        status = 200,
      ) => {
        const chrome = chromeOf(req, reply, session, 'orders');
        const { t, lang } = chrome;
        const order = await ownOrder(session, orderRef);
        const p = order.payment;
        const refundable = p
          ? p.charged -
            p.refunds.filter((r) => r.status !== 'failed').reduce((n, r) => n + r.amount, 0)
          : 0;
        const events = await eventsOf(session.merchant.id, orderRef);
        return page(
          reply,
          chrome,
          `${t.order} ${order.merchantOrderId}`,
          html`<p><a href="/dashboard/orders">← ${t.orders}</a></p>
            <h1>${t.order} ${order.merchantOrderId} ${badge(order.status, lang)}</h1>
            ${message ? html`<p class="${message.kind}" role="${message.kind === 'alert' ? 'alert' : 'status'}">${message.text}</p>` : ''}
            <div class="card">
              <dl class="facts">
                <dt>${t.amount}</dt>
                <dd>${money(order.amount, order.currency)}</dd>
                <dt>${t.created}</dt>
                <dd>${time(order.createdAt)}</dd>
                <dt>${t.order}</dt>
                <dd>${order.orderRef}</dd>
                ${
                  order.description
                    ? html`<dt>${t.description}</dt>
                        <dd>${order.description}</dd>`
                    : ''
                }
              </dl>
            </div>
            ${
              p
                ? html`<h2>${t.payment}</h2>
                    <div class="card">
                      <dl class="facts">
                        <dt>${t.charged}</dt>
                        <dd>${money(p.charged, p.currency)}</dd>
                        <dt>${t.discount}</dt>
                        <dd>${money(p.discount.amountOff, p.currency)}</dd>
                        ${
                          p.card
                            ? html`<dt>${t.card}</dt>
                                <dd>${brandName(p.card.brand, lang)} ···· ${p.card.last4}</dd>`
                            : ''
                        }
                        <dt>${t.payment}</dt>
                        <dd>${p.paymentId}</dd>
                      </dl>
                    </div>
                    <h2>${t.refunds}</h2>
                    ${dataTable(
                      [[t.created], [t.amount, 'num'], [t.status], [t.reason]],
                      p.refunds.map((r) => [
                        time(r.createdAt),
                        money(r.amount, r.currency),
                        badge(r.status, lang),
                        r.reason ?? '',
                      ]),
                      html`<p class="muted">${t.noRefunds}</p>`,
                    )}
                    ${
                      refundable > 0
                        ? html`<form
                            method="post"
                            action="/dashboard/orders/${order.orderRef}/refund/review"
                            class="card filters"
                          >
                            <input type="hidden" name="csrf" value="${session.csrf}" />
                            <p class="muted">
                              ${t.refundable}: <strong>${money(refundable, p.currency)}</strong>
                            </p>
                            <label for="r-amount"
                              >${t.refundAmount}<input
                                id="r-amount"
                                name="amount"
                                inputmode="decimal"
                                required
                                pattern="[0-9]+([.][0-9]{1,2})?"
                                value="${toDecimal(refundable, p.currency)}"
                            /></label>
                            <label for="r-reason"
                              >${t.reason}<input id="r-reason" name="reason" maxlength="200"
                            /></label>
                            <button type="submit">${t.review}</button>
                          </form>`
                        : ''
                    }`
                : ''
            }
            <h2>${t.orderEvents}</h2>
            ${eventsTable(chrome, events)}`,
          status,
        );
      };

      const eventsTable = (chrome: Chrome, events: EventRow[]) => {
        const { t, lang } = chrome;
        return dataTable(
          [[t.created], [t.type], [t.delivery], [t.deliveries, 'num']],
          events.map((e) => [
            html`<a href="/dashboard/events/${e.id}">${time(e.createdAt)}</a>`,
            e.type,
            badge(e.delivery, lang),
            e.attempts,
          ]),
          html`<p class="muted">${t.noEvents}</p>`,
        );
      };

      scope.get('/orders/:ref', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        const q = req.query as { refunded?: string };
        const t = wordsFor(langOf(req, reply));
        return orderPage(
          req,
          reply,
          session,
          (req.params as { ref: string }).ref,
          q.refunded ? { kind: 'notice', text: t.refunded } : undefined,
        );
      });

      scope.post('/orders/:ref/refund/review', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        if (!changeAllowed(req, session)) return refused(req, reply, session);
        const orderRef = (req.params as { ref: string }).ref;
        const form = req.body as Record<string, string>;
        const chrome = chromeOf(req, reply, session, 'orders');
        const { t } = chrome;
        const order = await ownOrder(session, orderRef);
        const amount = order.payment
          ? fromDecimal(form.amount ?? '', order.payment.currency)
          : undefined;
        if (!order.payment || amount === undefined)
          return orderPage(
            req,
            reply,
            session,
            orderRef,
            { kind: 'alert', text: t.badAmount },
            400,
          );
        const reason = String(form.reason ?? '').slice(0, 200);
        // The refund's key is made here, once: confirming twice (a double click, a reload) makes one refund.
        const key = `dash-${randomBytes(12).toString('hex')}`;
        const shown = money(amount, order.payment.currency);
        return page(
          reply,
          chrome,
          t.confirmRefund,
          html`<p><a href="/dashboard/orders/${orderRef}">← ${t.back}</a></p>
            <h1>${t.confirmRefund}</h1>
            <form method="post" action="/dashboard/orders/${orderRef}/refund" class="card">
              <p>${t.confirmQuestion.replace('{amount}', shown)}</p>
              <dl class="facts">
                <dt>${t.order}</dt>
                <dd>${order.merchantOrderId}</dd>
                <dt>${t.amount}</dt>
                <dd>${shown}</dd>
                ${
                  reason
                    ? html`<dt>${t.reason}</dt>
                        <dd>${reason}</dd>`
                    : ''
                }
              </dl>
              <input type="hidden" name="csrf" value="${session.csrf}" />
              <input type="hidden" name="amount" value="${amount}" />
              <input type="hidden" name="reason" value="${reason}" />
              <input type="hidden" name="key" value="${key}" />
              <p>
                <button type="submit">${t.confirmRefund}</button>
                <a href="/dashboard/orders/${orderRef}">${t.cancel}</a>
              </p>
            </form>`,
        );
      });

      scope.post('/orders/:ref/refund', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        if (!changeAllowed(req, session)) return refused(req, reply, session);
        const orderRef = (req.params as { ref: string }).ref;
        const form = req.body as Record<string, string>;
        const t = wordsFor(langOf(req, reply));
        const amount = Number(form.amount);
        if (
          !/^[1-9][0-9]{0,8}$/.test(form.amount ?? '') ||
          !/^dash-[0-9a-f]{24}$/.test(form.key ?? '')
        )
          return orderPage(
            req,
            reply,
            session,
            orderRef,
            { kind: 'alert', text: t.badAmount },
            400,
          );
        try {
          const refund = await createRefund(
            ctx,
            session.merchant,
            orderRef,
            { amount, ...(form.reason ? { reason: String(form.reason).slice(0, 200) } : {}) },
            form.key,
          );
          if (refund.status === 'failed')
            return orderPage(
              req,
              reply,
              session,
              orderRef,
              { kind: 'alert', text: t.refundFailed },
              200,
            );
          return reply.redirect(`/dashboard/orders/${orderRef}?refunded=${refund.refundId}`, 303);
        } catch (error) {
          if (error instanceof ApiError && error.status < 500 && error.status !== 404)
            return orderPage(
              req,
              reply,
              session,
              orderRef,
              { kind: 'alert', text: `${t.refundFailed}: ${error.message}` },
              error.status,
            );
          throw error;
        }
      });

      // ---- events ----------------------------------------------------------------------------

      scope.get('/events', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        const chrome = chromeOf(req, reply, session, 'events');
        const after = (req.query as { after?: string }).after;
        const rows = await ctx.store.listEvents(
          session.merchant.id,
          after && /^evt_\w{1,60}$/.test(after) ? after : undefined,
          51,
        );
        const shown = rows.slice(0, 50);
        return page(
          reply,
          chrome,
          chrome.t.events,
          html`<h1>${chrome.t.events}</h1>
            ${eventsTable(chrome, shown)}
            <p class="pager">
              ${after ? html`<a href="/dashboard/events">${chrome.t.first}</a>` : ''}${rows.length > 50 ? html`<a rel="next" href="/dashboard/events?after=${shown[shown.length - 1].id}">${chrome.t.next}</a>` : ''}
            </p>`,
        );
      });

      const ownEvent = async (session: Session, id: string) => {
        const e = /^evt_\w{1,60}$/.test(id) ? await ctx.store.getEvent(id) : undefined;
        if (!e || e.merchantId !== session.merchant.id)
          throw new ApiError(404, 'not_found', 'no such event');
        return e;
      };

      scope.get('/events/:id', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        const chrome = chromeOf(req, reply, session, 'events');
        const { t, lang } = chrome;
        const e = await ownEvent(session, (req.params as { id: string }).id);
        const deliveries = await ctx.store.listDeliveries(e.id, 20);
        const q = req.query as { queued?: string; nohook?: string };
        const orderRef = /"orderRef":"(mor_\w+)"/.exec(e.body)?.[1];
        return page(
          reply,
          chrome,
          `${t.events} ${e.id}`,
          html`<p><a href="/dashboard/events">← ${t.events}</a></p>
            <h1>${e.type} ${badge(e.delivery, lang)}</h1>
            ${q.queued ? html`<p class="notice" role="status">${t.redelivered}</p>` : ''}
            ${q.nohook ? html`<p class="alert" role="alert">${t.noWebhook}</p>` : ''}
            <div class="card">
              <dl class="facts">
                <dt>${t.created}</dt>
                <dd>${time(e.createdAt)}</dd>
                <dt>ID</dt>
                <dd>${e.id}</dd>
                ${
                  orderRef
                    ? html`<dt>${t.order}</dt>
                        <dd><a href="/dashboard/orders/${orderRef}">${orderRef}</a></dd>`
                    : ''
                }
              </dl>
            </div>
            <form method="post" action="/dashboard/events/${e.id}/redeliver">
              <input type="hidden" name="csrf" value="${session.csrf}" />
              <button type="submit">${t.redeliver}</button>
            </form>
            <h2>${t.deliveries}</h2>
            ${dataTable(
              [[t.at], [t.httpStatus], [t.error], [t.duration, 'num']],
              deliveries.map((d) => [time(d.at), d.status ?? '—', d.error ?? '', `${d.ms} ms`]),
              html`<p class="muted">—</p>`,
            )}`,
        );
      });

      scope.post('/events/:id/redeliver', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        if (!changeAllowed(req, session)) return refused(req, reply, session);
        const e = await ownEvent(session, (req.params as { id: string }).id);
        const queued = await redeliver(ctx, e);
        return reply.redirect(`/dashboard/events/${e.id}?${queued ? 'queued=1' : 'nohook=1'}`, 303);
      });

      // ---- statement and figures -------------------------------------------------------------

      const dayOf = (req: FastifyRequest) => {
        const day = (req.query as { day?: string }).day ?? today();
        const bounds = dayBounds(day, ctx.config.statementTimeZone);
        return bounds
          ? { day, bounds }
          : { day: today(), bounds: dayBounds(today(), ctx.config.statementTimeZone)! };
      };

      scope.get('/statement', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        const chrome = chromeOf(req, reply, session, 'statement');
        const { t, lang } = chrome;
        const { day, bounds } = dayOf(req);
        const rows = await ctx.store.statementPage(
          session.merchant.id,
          bounds.from,
          bounds.to,
          undefined,
          200,
        );
        const figures = await ctx.store.dayFigures(session.merchant.id, bounds.from, bounds.to);
        return page(
          reply,
          chrome,
          `${t.statement} ${day}`,
          html`<h1>${t.statement} ${day}</h1>
            <form method="get" action="/dashboard/statement" class="card filters">
              <label for="s-day"
                >${t.day}<input id="s-day" name="day" type="date" value="${day}" required
              /></label>
              <button type="submit" class="secondary">${t.show}</button>
              <a id="statement-download" href="/dashboard/statement.csv?day=${day}" download
                >${t.download}</a
              >
            </form>
            ${figures.map(
              (f) =>
                html`<p class="card">
                  <strong>${t.total} ${f.currency}</strong>:
                  ${money(f.charged - f.refunded, f.currency)} · ${t.volume}
                  ${money(f.charged, f.currency)} · ${t.refundedTotal}
                  ${money(f.refunded, f.currency)}
                </p>`,
            )}
            <h2>${t.lines}</h2>
            ${dataTable(
              [[t.at], [t.type], [t.search], [t.amount, 'num'], [t.charged, 'num'], [t.status]],
              rows.map((r) => [
                time(r.at),
                r.type === 'refund' ? t.refund : t.payment,
                r.orderRef
                  ? html`<a href="/dashboard/orders/${r.orderRef}"
                      >${r.merchantOrderId ?? r.orderRef}</a
                    >`
                  : '—',
                money(r.amount, r.currency),
                money(r.charged, r.currency),
                badge(r.status, lang),
              ]),
              html`<p class="muted">—</p>`,
            )}
            <p class="muted">${t.timeZone}: ${ctx.config.statementTimeZone}</p>`,
        );
      });

      scope.get('/statement.csv', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        const { day, bounds } = dayOf(req);
        return reply
          .type('text/csv; charset=utf-8')
          .header(
            'content-disposition',
            `attachment; filename="cardpay-${session.merchant.id}-${day}.csv"`,
          )
          .send(Readable.from(statementLines(ctx, session.merchant.id, bounds)));
      });

      scope.get('/figures', async (req, reply) => {
        const session = signedIn(req, reply);
        if (!session) return reply;
        const chrome = chromeOf(req, reply, session, 'figures');
        const { t } = chrome;
        const { day, bounds } = dayOf(req);
        const figures = await ctx.store.dayFigures(session.merchant.id, bounds.from, bounds.to);
        const main = figures[0]?.currency ?? session.merchant.currencies[0] ?? 'CNY';
        // The week before, day by day, in the main currency: a bar chart drawn here, no script.
        const week: { day: string; charged: number }[] = [];
        for (let i = 6; i >= 0; i--) {
          const d = new Date(Date.parse(`${day}T00:00:00Z`) - i * 86400000)
            .toISOString()
            .slice(0, 10);
          const b = dayBounds(d, ctx.config.statementTimeZone)!;
          const f = (await ctx.store.dayFigures(session.merchant.id, b.from, b.to)).find(
            (x) => x.currency === main,
          );
          week.push({ day: d, charged: f?.charged ?? 0 });
        }
        const top = Math.max(1, ...week.map((w) => w.charged));
        const summary = week.map((w) => `${w.day.slice(5)} ${money(w.charged, main)}`).join(', ');
        return page(
          reply,
          chrome,
          `${t.figures} ${day}`,
          html`<h1>${t.figures} ${day}</h1>
            <form method="get" action="/dashboard/figures" class="card filters">
              <label for="g-day"
                >${t.day}<input id="g-day" name="day" type="date" value="${day}" required
              /></label>
              <button type="submit" class="secondary">${t.show}</button>
            </form>
            ${
              figures.length === 0
                ? html`<p class="muted card">—</p>`
                : figures.map(
                    (f) =>
                      html`<div class="figures">
                        <div class="figure">${t.count}<strong>${f.payments}</strong></div>
                        <div class="figure">${t.succeeded}<strong>${f.succeeded}</strong></div>
                        <div class="figure">
                          ${t.volume} (${f.currency})<strong
                            >${money(f.charged, f.currency)}</strong
                          >
                        </div>
                        <div class="figure">
                          ${t.refundedTotal} (${f.currency})<strong
                            >${money(f.refunded, f.currency)}</strong
                          >
                        </div>
                      </div>`,
                  )
            }
            <h2 id="week">${t.lastSevenDays} (${main})</h2>
            <svg
              class="chart"
              viewBox="0 0 700 240"
              role="img"
              aria-labelledby="week"
              aria-describedby="week-data"
            >
              ${week.map((w, i) => {
                const h = Math.round((w.charged / top) * 170);
                return html`<rect x="${20 + i * 97}" y="${200 - h}" width="60" height="${h}"></rect
                  ><text x="${50 + i * 97}" y="${218}" text-anchor="middle">${w.day.slice(5)}</text
                  ><text x="${50 + i * 97}" y="${194 - h}" text-anchor="middle"
                    >${money(w.charged, main)}</text
                  >`;
              })}
            </svg>
            <p id="week-data" class="skip">${summary}</p>`,
        );
      });
    },
    { prefix: '/dashboard' },
  );
}

/** Minor units as the decimal a person types: 1999 CNY is "19.99". */
function toDecimal(amount: number, currency: string): string {
  const exp = currencyExponent(currency);
  if (exp === 0) return String(amount);
  const text = String(amount).padStart(exp + 1, '0');
  return `${text.slice(0, -exp)}.${text.slice(-exp)}`;
}

/** A typed decimal as minor units, without floating point; undefined when it is not an amount. */
function fromDecimal(text: string, currency: string): number | undefined {
  const exp = currencyExponent(currency);
  const m = /^\s*([0-9]{1,9})(?:\.([0-9]{1,3}))?\s*$/.exec(text);
  if (!m || (m[2] && m[2].length > exp)) return undefined;
  const minor = Number(m[1]) * 10 ** exp + Number((m[2] ?? '').padEnd(exp, '0') || '0');
  return minor >= 1 && minor <= 100000000 ? minor : undefined;
}
