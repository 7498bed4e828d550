import type { FastifyServerOptions } from 'fastify';
import { maskPan } from 'cardpay';

/** Masks every run of 12-19 digits (optionally spaced) to its first 6 and last 4: a safety net under all logging. */
export function maskDigits(text: string): string {
  return text.replace(/\d(?:[ -]?\d){11,18}/g, (run) => maskPan(run.replace(/[ -]/g, '')));
}

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskDigits(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  // Only plain data is walked. Requests, replies and errors are left to pino's serializers,
  // which pick the few fields a line needs: walking a whole request cost milliseconds a line.
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null && !Array.isArray(value)) return value;
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
  name?: string,
): FastifyServerOptions['logger'] {
  return {
    level,
    ...(name ? { name } : {}),
    ...(stream ? { stream } : {}),
    serializers: {
      // The route pattern, not the raw path with its ids; the terminal when one signed.
      req: (req: {
        id?: string;
        method?: string;
        url?: string;
        ip?: string;
        routeOptions?: { url?: string };
        headers?: Record<string, unknown>;
      }) => ({
        id: req.id,
        method: req.method,
        route: req.routeOptions?.url ?? maskDigits(String(req.url ?? '').split('?')[0]),
        ip: req.ip,
        ...(typeof req.headers?.['x-cardpay-terminal'] === 'string'
          ? { terminal: maskDigits(req.headers['x-cardpay-terminal']) }
          : {}),
      }),
      // The completed line carries the method and route again, so that one line answers "every
      // 5xx on POST /v1/sessions/:id/authenticate".
      res: (res: {
        statusCode?: number;
        request?: { method?: string; url?: string; routeOptions?: { url?: string } };
      }) => ({
        status: res.statusCode,
        ...(res.request
          ? {
              method: res.request.method,
              route:
                res.request.routeOptions?.url ??
                maskDigits(String(res.request.url ?? '').split('?')[0]),
            }
          : {}),
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
