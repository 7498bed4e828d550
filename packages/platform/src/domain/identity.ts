import type { TerminalIdentityRequest } from 'cardpay';
import type { Ctx } from './context';
import { WeChatRefused, WeChatUnavailable } from '../connectors/wechat';
import { ApiError } from '../infra/errors';
import type { TerminalRow } from '../store/types';

type IdentityFields = Pick<TerminalRow, 'hostAppId' | 'openidSealed' | 'openpidHash'>;

/**
 * Who the shopper is in WeChat (PROTOCOL.md §2.1): the host app's login code exchanged for the
 * openid (kept sealed, for SOTER checks), the plugin's for the openpid (kept as a keyed hash, by
 * which the shopper's terminals in that app share history and card bindings). Returns the
 * terminal's fields; nothing is written here, so a registration that fails leaves nothing.
 */
export async function resolveIdentity(
  ctx: Ctx,
  terminalId: string,
  identity: TerminalIdentityRequest,
): Promise<IdentityFields> {
  const wechat = ctx.wechat;
  // The sandbox's own SOTER check needs nobody's identity: what a terminal tells is not kept,
  // so the demo registers the same way with or without WeChat credentials.
  if (!wechat && ctx.soter && !ctx.soter.needsIdentity) return {};
  if (!wechat || !wechat.knows(identity.hostAppId))
    throw new ApiError(
      422,
      'identity_invalid',
      `this platform has no credentials for the app ${identity.hostAppId}`,
    );
  try {
    const openid = await wechat.openidFor(identity.hostAppId, identity.hostLoginCode);
    let openpidHash: string | null = null;
    if (identity.pluginLoginCode && wechat.hasPlugin) {
      const openpid = await wechat.openpidFor(identity.pluginLoginCode);
      openpidHash = ctx.sealer.openpidHash(identity.hostAppId, openpid);
    }
    ctx.log.info(
      {
        event: 'terminal_identified',
        terminalId,
        hostAppId: identity.hostAppId,
        linked: !!openpidHash,
      },
      'a terminal told who the shopper is in WeChat',
    );
    return {
      hostAppId: identity.hostAppId,
      openidSealed: ctx.sealer.seal(Buffer.from(openid, 'utf8'), `openid:${terminalId}`),
      openpidHash,
    };
  } catch (error) {
    if (error instanceof WeChatRefused) {
      ctx.log.warn(
        {
          event: 'identity_refused',
          hostAppId: identity.hostAppId,
          api: error.api,
          errcode: error.errcode,
        },
        'WeChat refused a login code',
      );
      throw new ApiError(
        422,
        'identity_invalid',
        'WeChat refused the login code (expired, used, or of another app); log in again',
      );
    }
    if (error instanceof WeChatUnavailable) {
      ctx.log.warn(
        { event: 'wechat_unavailable', hostAppId: identity.hostAppId, api: error.api },
        'WeChat could not be asked who the shopper is',
      );
      throw new ApiError(
        503,
        'wechat_unavailable',
        'WeChat cannot be reached now; try again shortly',
        { retryAfter: 5 },
        true,
      );
    }
    throw error;
  }
}

/** `POST /v1/terminals/{id}/identity` (§2.1): a terminal already registered tells who it is. */
export async function identifyTerminal(
  ctx: Ctx,
  terminal: TerminalRow,
  terminalId: string,
  identity: TerminalIdentityRequest,
) {
  if (terminalId !== terminal.id)
    throw new ApiError(404, 'not_found', 'a terminal may tell its own identity only');
  const fields = await resolveIdentity(ctx, terminal.id, identity);
  await ctx.store.commit([{ kind: 'updateTerminal', id: terminal.id, patch: fields }]);
  return { terminalId: terminal.id, hostAppId: identity.hostAppId, linked: !!fields.openpidHash };
}
