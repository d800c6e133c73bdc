import { createHmac } from 'node:crypto';
import type { Message } from './message';

export interface Outgoing {
  url: string;
  body: string;
  headers: Record<string, string>;
}

const html = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const mrkdwn = html; // Slack escapes exactly &, < and >

function lines(
  m: Message,
  esc: (s: string) => string,
  bold: (s: string) => string,
  code: (s: string) => string,
): string[] {
  const out = [
    bold(esc(m.title)),
    `${esc(m.repository ?? m.project)} ${code(esc(m.ref))} @ ${code(m.commit.slice(0, 12))}${m.environment ? ` → ${esc(m.environment)}` : ''}`,
    esc(m.summary),
  ];
  if (m.error) out.push(`${esc(m.error)}`);
  for (const h of m.hosts) out.push(`• ${esc(h.host)}${h.stage ? ` (${esc(h.stage)})` : ''}: ${esc(h.line)}`);
  if (m.moreHosts) out.push(`… and ${m.moreHosts} more`);
  if (m.action) out.push(bold(esc(m.action)));
  return out;
}

/** Telegram Bot API sendMessage with HTML formatting. */
export function telegram(m: Message, o: { apiUrl: string; token: string; chatId: string }): Outgoing {
  const text = lines(
    m,
    html,
    (s) => `<b>${s}</b>`,
    (s) => `<code>${s}</code>`,
  );
  if (m.runUrl) text.push(`<a href="${html(m.runUrl)}">Open the run</a>`);
  return {
    url: `${o.apiUrl}/bot${o.token}/sendMessage`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      chat_id: o.chatId,
      text: text.join('\n').slice(0, 4096),
      parse_mode: 'HTML',
      disable_web_page_preview: true,
    }),
  };
}

/** Slack incoming webhook: plain text fallback plus one mrkdwn section. */
export function slack(m: Message, url: string): Outgoing {
  const text = lines(
    m,
    mrkdwn,
    (s) => `*${s}*`,
    (s) => `\`${s}\``,
  );
  if (m.runUrl) text.push(`<${m.runUrl}|Open the run>`);
  return {
    url,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      text: `${m.title}: ${m.project} ${m.release}`,
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: text.join('\n').slice(0, 2900) } }],
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
