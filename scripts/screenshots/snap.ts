// Writes a rendered component as standalone HTML with the component styles, for Chromium to shoot.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringsFor } from '../../plugin/lib/i18n';
import { find, type SimComponent } from '../../packages/testing/src/simulate';

export const OUT = join(__dirname, '../../screenshots/html');

// What a mini-program gives its built-in tags, roughly, so that the page looks like one.
const BASE = `
  body { margin: 0; font-family: -apple-system, "PingFang SC", "Noto Sans CJK SC", sans-serif; background: #ededed; }
  @media (prefers-color-scheme: dark) { body { background: #000000; } }
  .frame { width: 750px; padding: 24px 0; }
  wx-view, wx-button, wx-input { display: block; box-sizing: border-box; }
  wx-text { display: inline; }
  wx-button { position: relative; margin: 0 auto; padding: 0 28px; width: 100%; line-height: 2.6; text-align: center; border-radius: 10px; font-weight: 600; }
  wx-input { line-height: 88px; }
  wx-input::before { content: attr(placeholder); color: #9a9a9a; }
  /* The picture is taken at once: show the sheets where their rise ends. */
  * { animation: none !important; }`;

/** Inputs render without their attributes under simulate: give them their placeholders back. */
function placeholders(comp: SimComponent, locale: 'zh_CN' | 'en_US' = 'zh_CN') {
  const t = stringsFor(locale);
  for (const [id, words] of [
    ['cardpay-manual-input', t.cardNumber],
  ] as const)
    (find(comp, id)?.dom as unknown as { setAttribute?(n: string, v: string): void } | undefined)?.setAttribute?.(
      'placeholder',
      words,
    );
}

export function snap(comp: SimComponent, name: string, locale: 'zh_CN' | 'en_US' = 'zh_CN') {
  placeholders(comp, locale);
  const doc = (globalThis as unknown as { document: { head: { querySelectorAll(q: string): ArrayLike<{ outerHTML: string }> } } }).document;
  const styles = Array.from(doc.head.querySelectorAll('style')).map((s) => s.outerHTML).join('\n');
  // Inputs render empty under simulate: show their placeholders as text for the picture.
  const body = comp.dom.outerHTML;
  writeFileSync(join(OUT, `${name}.html`), `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=750"><style>${BASE}</style>${styles}</head><body><div class="frame">${body}</div></body></html>`);
}

