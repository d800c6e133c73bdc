import { createHmac } from 'node:crypto';
import type { Message } from './message';

export interface Outgoing {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** Sent instead when the service rejects the request with a 400 (Telegram: formatting it cannot parse). */
  fallback?: Outgoing;
}

/** A run of text with one style; services render pieces their own way, escaping only the text. */
interface Piece {
  text: string;
  style?: 'bold' | 'code';
  href?: string;
}
type Line = Piece[];

function messageLines(m: Message): Line[] {
  const out: Line[] = [
    [{ text: m.title, style: 'bold' }],
    [
      { text: `${m.repository ?? m.project} ` },
      { text: m.ref, style: 'code' },
      { text: ' @ ' },
      { text: m.commit.slice(0, 12), style: 'code' },
      ...(m.environment ? [{ text: ` → ${m.environment}` }] : []),
    ],
    [{ text: m.summary }],
  ];
  if (m.error) out.push([{ text: m.error }]);
  for (const h of m.hosts) out.push([{ text: `• ${h.host}${h.stage ? ` (${h.stage})` : ''}: ${h.line}` }]);
  if (m.moreHosts) out.push([{ text: `… and ${m.moreHosts} more` }]);
  if (m.action) out.push([{ text: m.action, style: 'bold' }]);
  if (m.runUrl) out.push([{ text: 'Open the run', href: m.runUrl }]);
  return out;
}

/**
 * Renders lines within a length limit without ever cutting markup: the piece that does not fit has its text cut
 * (before escaping, never inside a surrogate pair) and is rendered whole, closed tags included; the rest is
 * dropped and "…" marks the cut. Cutting the rendered string instead could leave half a tag or entity, which
 * Telegram rejects outright. Room for the "…" is kept free until the last line.
 */
function renderWithin(lines: Line[], limit: number, piece: (p: Piece) => string): string {
  const more = '…';
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const prefix = i ? '\n' : '';
    const rendered = lines[i].map(piece);
    const whole = prefix + rendered.join('');
    if (out.length + whole.length <= (i === lines.length - 1 ? limit : limit - more.length)) {
      out += whole;
      continue;
    }
    let acc = out + prefix;
    for (let j = 0; j < rendered.length; j++) {
      if (acc.length + rendered[j].length + more.length <= limit) {
        acc += rendered[j];
        continue;
      }
      acc += cutPiece(lines[i][j], limit - acc.length - more.length, piece);
      break;
    }
    return acc + more;
  }
  return out;
}

function cutPiece(p: Piece, room: number, piece: (p: Piece) => string): string {
  let n = Math.min(p.text.length, room);
  while (n > 0) {
    let text = p.text.slice(0, n);
    if (/[\uD800-\uDBFF]$/.test(text)) text = text.slice(0, -1);
    const r = piece({ ...p, text });
    if (r.length <= room) return text ? r : '';
    n -= Math.max(1, Math.ceil((r.length - room) / 5)); // escaping can grow a character up to 5 times (&amp;)
  }
  return '';
}

const html = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const mrkdwn = html; // Slack escapes exactly &, < and >

const TELEGRAM_LIMIT = 4096;

function telegramPiece(p: Piece): string {
  if (p.href) return `<a href="${html(p.href).replace(/"/g, '&quot;')}">${html(p.text)}</a>`;
  if (p.style === 'bold') return `<b>${html(p.text)}</b>`;
  if (p.style === 'code') return `<code>${html(p.text)}</code>`;
  return html(p.text);
}

/**
 * Telegram Bot API sendMessage with HTML formatting, cut to its 4096-character limit on text, not markup. Should
 * Telegram still refuse the formatting (400), the same message goes again as plain text, so it is delivered.
 */
export function telegram(m: Message, o: { apiUrl: string; token: string; chatId: string }): Outgoing {
  const lines = messageLines(m);
  const url = `${o.apiUrl}/bot${o.token}/sendMessage`;
  const headers = { 'content-type': 'application/json' };
  const plain = renderWithin(lines, TELEGRAM_LIMIT, (p) => (p.href ? `${p.text}: ${p.href}` : p.text));
  return {
    url,
    headers,
    body: JSON.stringify({
      chat_id: o.chatId,
      text: renderWithin(lines, TELEGRAM_LIMIT, telegramPiece),
      parse_mode: 'HTML',
      disable_web_page_preview: true,
    }),
    fallback: {
      url,
      headers,
      body: JSON.stringify({ chat_id: o.chatId, text: plain, disable_web_page_preview: true }),
    },
  };
}

function slackPiece(p: Piece): string {
  if (p.href) return `<${p.href}|${mrkdwn(p.text)}>`;
  if (p.style === 'bold') return `*${mrkdwn(p.text)}*`;
  if (p.style === 'code') return `\`${mrkdwn(p.text)}\``;
  return mrkdwn(p.text);
}

/** Slack incoming webhook: plain text fallback plus one mrkdwn section (3000 characters at most). */
export function slack(m: Message, url: string): Outgoing {
  return {
    url,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      text: `${m.title}: ${m.project} ${m.release}`,
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: renderWithin(messageLines(m), 2900, slackPiece) } },
      ],
    }),
  };
}

const COLOURS: Record<Message['event'], number> = {
  started: 0x1c7ed6,
  succeeded: 0x2b8a3e,
  partial_success: 0xe67700,
  failed: 0xc92a2a,
  rolled_back: 0xe67700,
  rollback_failed: 0x862e9c,
  escalation: 0xc92a2a,
};

/** Discord webhook with one embed coloured by the outcome. */
export function discord(m: Message, url: string): Outgoing {
  const fields = [
    { name: 'Ref', value: `\`${m.ref}\` @ \`${m.commit.slice(0, 12)}\``, inline: true },
    ...(m.environment ? [{ name: 'Environment', value: m.environment, inline: true }] : []),
    { name: 'Status', value: m.status, inline: true },
    ...(m.hosts.length
      ? [
          {
            name: 'Hosts',
            value: (
              m.hosts.map((h) => `${h.host}: ${h.line}`).join('\n') +
              (m.moreHosts ? `\n… and ${m.moreHosts} more` : '')
            ).slice(0, 1024),
          },
        ]
      : []),
    ...(m.error ? [{ name: 'Error', value: m.error.slice(0, 1024) }] : []),
  ];
  return {
    url,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      username: 'homelab-deploy',
      embeds: [
        {
          title: `${m.title}: ${m.repository ?? m.project}`.slice(0, 256),
          description: [m.summary, m.action].filter(Boolean).join('\n'),
          url: m.runUrl,
          color: COLOURS[m.event],
          fields,
        },
      ],
    }),
  };
}

/** Generic JSON webhook; signed with HMAC-SHA256 when a secret is configured, like GitHub's own webhooks. */
export function webhook(m: Message, url: string, secret?: string): Outgoing {
  const body = JSON.stringify({ source: 'homelab-deploy', ...m });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-homelab-deploy-event': m.event,
  };
  if (secret)
    headers['x-homelab-deploy-signature-256'] =
      'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
  return { url, headers, body };
}
