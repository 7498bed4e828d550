import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CardPayError } from '../core/errors';
import {
  HostError,
  type BiometricProvider,
  type Host,
  type HostStorage,
  type ScanOutcome,
} from '../core/host';
import type { BiometricMode, ScanType } from '../core/protocol';

/** Storage in memory: what a fresh install looks like. */
export class MemoryStorage implements HostStorage {
  readonly data = new Map<string, string>();
  async get(key: string) {
    return this.data.get(key);
  }
  async set(key: string, value: string) {
    this.data.set(key, value);
  }
  async remove(key: string) {
    this.data.delete(key);
  }
}

/** Storage in one JSON file, written atomically (tools that keep a terminal between runs). */
export class FileStorage implements HostStorage {
  constructor(readonly path: string) {}
  private read_(): Record<string, string> {
    try {
      return JSON.parse(readFileSync(this.path, 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }
  private write_(data: Record<string, string>): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data), { mode: 0o600 });
    renameSync(tmp, this.path);
  }
  async get(key: string) {
    return this.read_()[key];
  }
  async set(key: string, value: string) {
    this.write_({ ...this.read_(), [key]: value });
  }
  async remove(key: string) {
    const data = this.read_();
    delete data[key];
    this.write_(data);
  }
}

export type ScriptedScan = string | ScanOutcome | { payload: string; scanType?: ScanType };

/**
 * A scanner that returns what the test queued, in order. An empty queue answers as a user who
 * closed the scanner. It records the scan types it was opened with.
 */
export class ScriptedScanner {
  private readonly queue_: ScriptedScan[] = [];
  readonly openedWith: ScanType[][] = [];

  /** Queues payloads (or whole outcomes) for the next scans. */
  push(...scans: ScriptedScan[]): this {
    this.queue_.push(...scans);
    return this;
  }
  /** Queues a user backing out of the scanner. */
  pushCancel(): this {
    return this.push({ ok: false, reason: 'cancelled', message: 'the user closed the scanner' });
  }
  get pending(): number {
    return this.queue_.length;
  }
  async scanCode(options: { scanType: ScanType[] }): Promise<ScanOutcome> {
    this.openedWith.push([...options.scanType]);
    const next = this.queue_.shift();
    if (next === undefined)
      return { ok: false, reason: 'cancelled', message: 'no scan was scripted' };
    if (typeof next === 'string') return { ok: true, result: next, scanType: 'qrCode' };
    if ('payload' in next)
      return { ok: true, result: next.payload, scanType: next.scanType ?? 'qrCode' };
    return next;
  }
}

/**
 * A software biometric authenticator of scheme `sandbox-p256` (PROTOCOL.md §5.4): an ECDSA P-256
 * key made on the "device"; `resultJSON` carries the challenge, signed with SHA-256, DER-encoded.
 */
export function createSandboxBiometric(
  options: { modes?: BiometricMode[]; refuse?: boolean } = {},
): BiometricProvider & {
  publicKey: string;
  privateKey: KeyObject;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const modes = options.modes ?? ['fingerPrint'];
  return {
    scheme: 'sandbox-p256',
    publicKey: spki.toString('hex'),
    privateKey,
    async available() {
      return modes;
    },
    async authenticate(challenge, mode) {
      if (options.refuse)
        throw new CardPayError(
          'biometric_cancelled',
          'the user cancelled biometric authentication',
        );
      const resultJSON = JSON.stringify({ challenge, mode, issuedAt: new Date().toISOString() });
      const signature = sign('sha256', Buffer.from(resultJSON, 'utf8'), privateKey).toString('hex');
      return { mode, resultJSON, signature };
    },
  };
}

export interface NodeHostOptions {
  storage?: HostStorage;
  scanner?: ScriptedScanner;
  biometric?: BiometricProvider;
  /** Replace the transport (tests that tamper with answers wrap the default). */
  fetch?: typeof fetch;
  now?: () => number;
  deviceLabel?: string;
}

export interface NodeHost extends Host {
  storage: HostStorage;
  scanner: ScriptedScanner;
}

/**
 * The host for Node: tests, tools and server-side scripts. Requests go through `fetch` with a
 * time limit; the scanner is scripted; randomness comes from `node:crypto`.
 *
 * @example
 * const host = createNodeHost()
 * host.scanner.push('4242 4242 4242 4242')
 */
export function createNodeHost(options: NodeHostOptions = {}): NodeHost {
  const scanner = options.scanner ?? new ScriptedScanner();
  const doFetch = options.fetch ?? fetch;
  return {
    storage: options.storage ?? new MemoryStorage(),
    scanner,
    scanCode: (opts) => scanner.scanCode(opts),
    async randomBytes(length) {
      return new Uint8Array(randomBytes(length));
    },
    async request(req) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), req.timeoutMs);
      try {
        const res = await doFetch(req.url, {
          method: req.method,
          headers: req.headers,
          body: req.body,
          signal: controller.signal,
        });
        const body = new Uint8Array(await res.arrayBuffer());
        const headers: Record<string, string> = {};
        res.headers.forEach((value, name) => {
          headers[name.toLowerCase()] = value;
        });
        return { status: res.status, headers, body };
      } catch (err) {
        const timedOut = controller.signal.aborted;
        throw new HostError(
          timedOut ? 'timeout' : 'network',
          timedOut ? 'request timed out' : `request failed: ${(err as Error).message}`,
        );
      } finally {
        clearTimeout(timer);
      }
    },
    ...(options.biometric ? { biometric: options.biometric } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.deviceLabel ? { deviceLabel: options.deviceLabel } : {}),
  };
}
