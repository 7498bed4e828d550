// BER-TLV reading for EMVCo consumer-presented-mode QR codes (PROTOCOL.md §5.1).

export interface Tlv {
  /** Tag bytes in upper-case hex, e.g. '5A', '5F24', '9F25'. */
  tag: string;
  constructed: boolean;
  value: Uint8Array;
}

export type TlvResult = { ok: true; items: Tlv[] } | { ok: false; problem: string };

/**
 * Splits bytes into a flat list of TLVs (one level). Truncated tags, lengths or values, indefinite
 * lengths and lengths over 4 bytes are reported, never thrown. `0x00` bytes between objects are
 * padding (EMV Book 3, Annex B) and skipped.
 */
export function parseTlv(bytes: Uint8Array): TlvResult {
  const items: Tlv[] = [];
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] === 0x00) {
      i++;
      continue;
    }
    const first = bytes[i];
    let tag = hexByte(first);
    i++;
    if ((first & 0x1f) === 0x1f) {
      // Multi-byte tag: continuation bytes have their top bit set; the last one does not.
      for (;;) {
        if (i >= bytes.length) return { ok: false, problem: 'truncated tag' };
        const b = bytes[i++];
        tag += hexByte(b);
        if ((b & 0x80) === 0) break;
        if (tag.length > 8) return { ok: false, problem: 'tag too long' };
      }
    }
    if (i >= bytes.length) return { ok: false, problem: `tag ${tag} has no length` };
    let length = bytes[i++];
    if (length & 0x80) {
      const n = length & 0x7f;
      if (n === 0 || n > 4)
        return { ok: false, problem: `tag ${tag} has an unsupported length form` };
      if (i + n > bytes.length) return { ok: false, problem: `tag ${tag} has a truncated length` };
      length = 0;
      for (let k = 0; k < n; k++) length = length * 256 + bytes[i++];
    }
    if (i + length > bytes.length) return { ok: false, problem: `tag ${tag} is truncated` };
    items.push({ tag, constructed: (first & 0x20) !== 0, value: bytes.subarray(i, i + length) });
    i += length;
  }
  return { ok: true, items };
}

function hexByte(b: number): string {
  return (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
}

/** Nibbles of BCD-ish data, as hex characters ('0'-'9', 'A'-'F'). */
export function nibbles(value: Uint8Array): string {
  let out = '';
  for (let i = 0; i < value.length; i++) out += hexByte(value[i]);
  return out;
}

export type PanSearch =
  | { ok: true; pan: string; tag: '5A' | '57' }
  | { ok: false; reason: 'no_pan' | 'corrupt'; problem: string };

const PAYLOAD_FORMAT_INDICATOR = 'CPV01';

/** True when the bytes begin with the CPM Payload Format Indicator `85 05 "CPV01"`. */
export function looksLikeCpm(bytes: Uint8Array): boolean {
  if (bytes.length < 7 || bytes[0] !== 0x85 || bytes[1] !== 0x05) return false;
  for (let k = 0; k < 5; k++)
    if (bytes[2 + k] !== PAYLOAD_FORMAT_INDICATOR.charCodeAt(k)) return false;
  return true;
}

/**
 * Finds the PAN of a CPM payload: the first Application PAN (`5A`) or Track 2 Equivalent Data
 * (`57`) in payload order, inside an Application Template (`61`) or the Common Data Template
 * (`62`). Nested templates (`63`, `64`) and other tags are skipped.
 */
export function findCpmPan(bytes: Uint8Array): PanSearch {
  const top = parseTlv(bytes);
  if (!top.ok) return { ok: false, reason: 'corrupt', problem: top.problem };
  const [pfi, ...rest] = top.items;
  if (!pfi || pfi.tag !== '85') {
    return { ok: false, reason: 'corrupt', problem: 'missing payload format indicator' };
  }
  for (const item of rest) {
    if (item.tag !== '61' && item.tag !== '62') continue;
    const inner = parseTlv(item.value);
    if (!inner.ok)
      return { ok: false, reason: 'corrupt', problem: `template ${item.tag}: ${inner.problem}` };
    for (const field of inner.items) {
      if (field.tag === '5A') return panFromBcd(field.value);
      if (field.tag === '57') return panFromTrack2(field.value);
    }
  }
  return { ok: false, reason: 'no_pan', problem: 'no application PAN or track 2 data' };
}

function panFromBcd(value: Uint8Array): PanSearch {
  const text = nibbles(value);
  const m = /^([0-9]+)F*$/.exec(text);
  if (!m) return { ok: false, reason: 'corrupt', problem: 'application PAN is not BCD' };
  return { ok: true, pan: m[1], tag: '5A' };
}

function panFromTrack2(value: Uint8Array): PanSearch {
  const text = nibbles(value);
  const m = /^([0-9]+)D/.exec(text);
  if (!m) return { ok: false, reason: 'corrupt', problem: 'track 2 data has no separator' };
  return { ok: true, pan: m[1], tag: '57' };
}
