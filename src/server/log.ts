import type { FastifyServerOptions } from 'fastify';
import { maskPan } from '../core/card/reader';

/** Masks every run of 12-19 digits (optionally spaced) to its first 6 and last 4: a safety net under all logging. */
export function maskDigits(text: string): string {
  return text.replace(/\d(?:[ -]?\d){11,18}/g, (run) => maskPan(run.replace(/[ -]/g, '')));
}

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskDigits(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEYS.test(k) ? '[redacted]' : scrub(v, depth + 1);
  return out;
}

const SECRET_KEYS =
  /^(pan|cvv|proof|key|pinKey|terminalSecret|secret|password|signature|authorization|x-cardpay-signature|value|resultJSON|confirmToken|challenge)$/i;

/**
 * pino options for the platform: JSON lines, request bodies never logged, secrets redacted by
 * name, and any card-number-like digit run masked wherever it appears.
 */
export function loggerOptions(
  level: string,
  stream?: NodeJS.WritableStream,
): FastifyServerOptions['logger'] {
  return {
    level,
    ...(stream ? { stream } : {}),
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-cardpay-signature"]'],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string }) => ({
        method: req.method,
        url: maskDigits(String(req.url ?? '')),
        ip: req.ip,
      }),
    },
    hooks: {
      logMethod(args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(
          this,
          args.map((a) => scrub(a)),
        );
      },
    },
  } as FastifyServerOptions['logger'];
}
