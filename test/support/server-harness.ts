import { Checkout, type CheckoutOptions } from '../../packages/sdk/src/core/checkout';
import { PlatformClient } from '../../packages/sdk/src/core/client';
import { derivePinKey, passwordProof } from '../../packages/sdk/src/core/crypto';
import { toHex } from '../../packages/sdk/src/core/encoding';
import { createNodeHost, type NodeHost } from '../../packages/sdk/src/hosts/node';
import type { SandboxPlatform } from '../../packages/testing/src/platform';

export const PASSWORD = '204816';
export const SALT = '0f'.repeat(16);

/** A registered terminal speaking to a real platform over HTTP through the SDK's client. */
export async function terminal(
  platform: SandboxPlatform,
  extra: { biometric?: NodeHost['biometric'] } = {},
) {
  const host = createNodeHost({ biometric: extra.biometric });
  const client = new PlatformClient({
    baseUrl: platform.url,
    host,
    backoffMs: 20,
    maxRetryAfterMs: 50,
  });
  const key = toHex(derivePinKey(PASSWORD, Buffer.from(SALT, 'hex'), 10000));
  const bio = extra.biometric;
  const r = await client.register({
    password: { salt: SALT, iterations: 10000, key },
    ...(bio ? { biometric: { scheme: bio.scheme, publicKey: bio.publicKey } } : {}),
  });
  client.identity = r;
  return { host, client, id: r.terminalId, secret: r.terminalSecret, key };
}

/** Drives one checkout with the SDK's client up to the authentication prompt. */
export async function toPrompt(
  t: Awaited<ReturnType<typeof terminal>>,
  card: string,
  amount = 1999,
  orderRef?: string,
) {
  const k = () => t.client.newIdempotencyKey();
  const created = await t.client.createSession(
    { merchantId: 'mch_sandbox', ...(orderRef ? { orderRef } : {}) },
    await k(),
  );
  const order = await t.client.submitOrder(
    created.sessionId,
    { amount, currency: 'CNY', card: { source: 'scan', scanType: 'qrCode', payload: card } },
    await k(),
  );
  const confirmed = await t.client.confirm(
    created.sessionId,
    { confirmToken: order.confirmation.confirmToken, accept: true },
    await k(),
  );
  return {
    sessionId: created.sessionId,
    confirmation: order.confirmation,
    prompt: confirmed.authPrompt!,
  };
}

export function proof(
  sessionId: string,
  prompt: { challenge: string },
  confirmation: { orderId: string; amount: number; currency: string },
  password = PASSWORD,
) {
  const pinKey = derivePinKey(password, Buffer.from(SALT, 'hex'), 10000);
  return passwordProof(pinKey, {
    sessionId,
    challenge: prompt.challenge,
    orderId: confirmation.orderId,
    amount: confirmation.amount,
    currency: confirmation.currency,
  });
}

/**
 * The factors a shopper gives for a prompt: the password, and the card's CVV when the prompt
 * makes it mandatory (the card's first payment on this terminal).
 */
export function factorsFor(
  sessionId: string,
  prompt: { challenge: string; mandatory?: string[] },
  confirmation: { orderId: string; amount: number; currency: string },
  password = PASSWORD,
  cvv = '123',
) {
  return [
    { method: 'password' as const, proof: proof(sessionId, prompt, confirmation, password) },
    ...(prompt.mandatory?.includes('cvv') ? [{ method: 'cvv' as const, value: cvv }] : []),
  ];
}

/**
 * Pays with the password (and the CVV where asked) through the SDK's client, for an open amount
 * or a merchant order; returns the answer or the thrown error.
 */
export async function pay(
  t: Awaited<ReturnType<typeof terminal>>,
  card: string,
  amount = 1999,
  password = PASSWORD,
  orderRef?: string,
) {
  const { sessionId, confirmation, prompt } = await toPrompt(t, card, amount, orderRef);
  try {
    return await t.client.authenticate(
      sessionId,
      {
        challenge: prompt.challenge,
        factors: factorsFor(sessionId, prompt, confirmation, password),
      },
      await t.client.newIdempotencyKey(),
    );
  } catch (error) {
    return error as { code: string; details: Record<string, unknown>; status: number };
  }
}

/** An SDK Checkout against the real platform, with a Node host. */
export function checkout(
  platform: SandboxPlatform,
  host = createNodeHost(),
  overrides: Partial<CheckoutOptions> = {},
) {
  return new Checkout({
    host,
    platformUrl: platform.url,
    merchantId: 'mch_sandbox',
    amount: 1999,
    pollIntervalMs: 50,
    ...overrides,
  });
}

/** Raw HTTP with hand-made signing, for attacks the SDK would never make. */
export async function raw(
  platform: SandboxPlatform,
  init: { method: string; path: string; body?: string; headers?: Record<string, string> },
) {
  const res = await fetch(platform.url + init.path, {
    method: init.method,
    body: init.body,
    headers: {
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: Object.fromEntries(res.headers.entries()), text, json };
}
