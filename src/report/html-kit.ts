import { createHash } from 'node:crypto';
import { formatDuration } from '../util/duration';

/**
 * The pieces both HTML pages (a run's report, the deploy history) are made of: escaping, the page shell with its
 * stylesheet, and data embedding. Pages are single files people open from an artifact download, offline, so
 * nothing here refers to anything outside the file.
 */

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for element content and for quoted attribute values alike. */
export function esc(value: unknown): string {
  if (value === undefined || value === null) return '';
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** An `href` only for web links: a report is data from elsewhere, and `javascript:` in it must stay text. */
export function safeHref(url: unknown): string | undefined {
  if (typeof url !== 'string' || /\s/.test(url)) return undefined;
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * JSON for a `<script type="application/json">` block. `<` is written as `\u003c` so no string in the data can
 * close the block (`</script>`) or open a comment; JSON.parse reads the escape back as the same character.
 */
export function jsonForScript(data: unknown): string {
  return JSON.stringify(data)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const BASE_CSS = `
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --panel: #f6f8fa; --track: #eef1f4;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5;
  --info: #0969da; --info-bg: #ddf4ff; --skip: #8c959f; --rb: #8250df; --rb-bg: #fbefff; --link: #0969da;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --panel: #151b23; --track: #212830;
    --ok: #3fb950; --ok-bg: #12361f; --bad: #ff7b72; --bad-bg: #3c1618; --warn: #d29922; --warn-bg: #3b2e0b;
    --info: #58a6ff; --info-bg: #0c2d6b; --skip: #6e7681; --rb: #bc8cff; --rb-bg: #2e1d4a; --link: #58a6ff;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
a { color: var(--link); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; overflow: auto;
  max-height: 320px; white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; background: var(--panel); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.msg { word-break: break-word; }
details { margin: 6px 0; }
summary { cursor: pointer; font-weight: 600; }
.muted { color: var(--muted); }
.meta { display: flex; flex-wrap: wrap; gap: 4px 18px; color: var(--muted); margin: 6px 0 0; }
.meta b { color: var(--fg); font-weight: 600; }
.banner { border-radius: 8px; padding: 14px 18px; margin: 8px 0 12px; border: 2px solid; }
.banner .headline { font-size: 24px; font-weight: 700; }
.banner.ok { background: var(--ok-bg); border-color: var(--ok); }
.banner.bad { background: var(--bad-bg); border-color: var(--bad); }
.banner.warn { background: var(--warn-bg); border-color: var(--warn); }
.banner.rb { background: var(--rb-bg); border-color: var(--rb); }
.banner.info { background: var(--info-bg); border-color: var(--info); }
.alarm { background: var(--bad); color: #fff; border-radius: 8px; padding: 12px 18px; margin: 10px 0; font-weight: 600; }
.alarm .headline { font-size: 20px; font-weight: 800; letter-spacing: .03em; }
.pill { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 12px; font-weight: 600; border: 1px solid; white-space: nowrap; }
.pill.ok { color: var(--ok); border-color: var(--ok); }
.pill.failed, .pill.bad { color: var(--bad); border-color: var(--bad); }
.pill.rolled_back, .pill.rb { color: var(--rb); border-color: var(--rb); }
.pill.skipped { color: var(--skip); border-color: var(--skip); }
.pill.warn { color: var(--warn); border-color: var(--warn); }
.pill.info { color: var(--info); border-color: var(--info); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; min-width: 150px; background: var(--panel); }
.card .n { font-size: 22px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .l { color: var(--muted); font-size: 12px; }
.card.bad .n { color: var(--bad); } .card.ok .n { color: var(--ok); } .card.rb .n { color: var(--rb); } .card.warn .n { color: var(--warn); }
`;

/**
 * A complete page. The Content-Security-Policy allows only this file's own style and the one script given (by its
 * hash): no network at all, and should a string ever slip past escaping, the browser still runs nothing from it.
 */
export function htmlPage(o: { title: string; body: string; css?: string; script?: string }): string {
  const scriptHash = o.script ? createHash('sha256').update(o.script).digest('base64') : undefined;
  const csp = [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    'img-src data:',
    scriptHash ? `script-src 'sha256-${scriptHash}'` : "script-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    `<title>${esc(o.title)}</title>`,
    `<style>${BASE_CSS}${o.css ?? ''}</style>`,
    '</head>',
    '<body>',
    '<main>',
    o.body,
    '</main>',
    o.script ? `<script>${o.script}</script>` : '',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** `2026-12-01 21:13:06 UTC` from an ISO time; the text itself when it is not a time. */
export function fmtTime(iso: unknown): string {
  if (typeof iso !== 'string') return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')
    .replace(/Z$/, ' UTC');
}

/** Percent with one decimal, trimmed: 100 %, 97.5 %, 0 %. */
export function pct(fraction: number): string {
  const v = Math.round(fraction * 1000) / 10;
  return `${Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)} %`;
}

/** formatDuration, extended to hours and days: MTTR and deploy windows are counted in those. */
export function fmtDuration(ms: number): string {
  if (ms < 3_600_000) return formatDuration(ms);
  const minutes = Math.round(ms / 60_000);
  const h = Math.floor(minutes / 60);
  if (h < 24) return `${h}h${minutes % 60 ? `${minutes % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ''}`;
}
