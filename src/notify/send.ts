import type { NotifyEvent, NotifySettings } from '../config/types';
import type { EscalationReport, Report } from '../report/types';
import type { Redactor } from '../secrets/redact';
import { stripUserinfo } from '../util/url';
import { sleep } from '../util/duration';
import { buildMessage, type NotifyContext } from './message';
import { discord, slack, telegram, webhook, type Outgoing } from './services';

export interface NotifyResult {
  service: 'telegram' | 'slack' | 'discord' | 'webhook';
  ok: boolean;
  attempts: number;
  error?: string;
}

async function postOnce(
  o: Outgoing,
  timeoutMs: number,
  retries: number,
): Promise<{ ok: boolean; attempts: number; error?: string; status?: number }> {
  let error = '';
  let status: number | undefined;
  for (let attempt = 1; attempt <= retries + 1; attempt++) {
    try {
      // One signal for the whole exchange, body included: a service that accepts and never answers, or trickles
      // its answer, costs at most timeoutMs per attempt.
      const res = await fetch(o.url, {
        method: 'POST',
        headers: o.headers,
        body: o.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.text().catch(() => '');
      if (res.ok) return { ok: true, attempts: attempt };
      status = res.status;
      error = `HTTP ${res.status}`;
      // A 4xx other than 429 will not get better by asking again.
      if (res.status < 500 && res.status !== 429) return { ok: false, attempts: attempt, error, status };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      status = undefined;
      error =
        e.name === 'TimeoutError'
          ? `no answer within ${timeoutMs}ms`
          : (e.cause?.code ?? e.cause?.message ?? e.message);
    }
    if (attempt <= retries) await sleep(250 * 2 ** (attempt - 1));
  }
  return { ok: false, attempts: retries + 1, error, status };
}

/** A 400 for what we sent (Telegram: "can't parse entities") is tried once more in the service's plainer form. */
async function post(
  o: Outgoing,
  timeoutMs: number,
  retries: number,
): Promise<{ ok: boolean; attempts: number; error?: string }> {
  const r = await postOnce(o, timeoutMs, retries);
  if (r.ok || r.status !== 400 || !o.fallback) return r;
  const again = await postOnce(o.fallback, timeoutMs, 0);
  return {
    ok: again.ok,
    attempts: r.attempts + again.attempts,
    error: again.ok ? undefined : `${r.error}, and ${again.error} as plain text`,
  };
}

/**
 * Sends one event to every configured service in parallel. Never throws and never changes the deploy: a service
 * that is down or slow costs at most timeout × (retries + 1) plus backoff. Tokens and webhook URLs are secrets:
 * they are registered with the redactor and never appear in results or warnings.
 */
export async function sendNotifications(
  event: NotifyEvent,
  report: Report | { project: string; release: Report['release']; escalation?: EscalationReport },
  ctx: NotifyContext,
  cfg: NotifySettings,
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
  warn: (msg: string) => void,
): Promise<NotifyResult[]> {
  // Registered before the event filter: a value must be masked even in a run that never sends to it.
  const need = (name: string) => {
    const v = env[name];
    if (v) redactor.add(v);
    return v;
  };
  for (const name of [
    cfg.telegram?.tokenEnv,
    cfg.slack?.webhookEnv,
    cfg.discord?.webhookEnv,
    cfg.webhook?.urlEnv,
    cfg.webhook?.secretEnv,
  ])
    if (name) need(name);
  if (!cfg.events.includes(event)) return [];
  const m = buildMessage(event, report as Report, ctx);
  const jobs: { service: NotifyResult['service']; make: () => Outgoing | string }[] = [];
  if (cfg.telegram) {
    const t = cfg.telegram;
    jobs.push({
      service: 'telegram',
      make: () =>
        need(t.tokenEnv)
          ? telegram(m, { apiUrl: t.apiUrl, token: need(t.tokenEnv) as string, chatId: t.chatId })
          : `${t.tokenEnv} is not set`,
    });
  }
  if (cfg.slack) {
    const s = cfg.slack;
    jobs.push({
      service: 'slack',
      make: () =>
        need(s.webhookEnv) ? slack(m, need(s.webhookEnv) as string) : `${s.webhookEnv} is not set`,
    });
  }
  if (cfg.discord) {
    const d = cfg.discord;
    jobs.push({
      service: 'discord',
      make: () =>
        need(d.webhookEnv) ? discord(m, need(d.webhookEnv) as string) : `${d.webhookEnv} is not set`,
    });
  }
  if (cfg.webhook) {
    const w = cfg.webhook;
    jobs.push({
      service: 'webhook',
      make: () =>
        need(w.urlEnv)
          ? webhook(m, need(w.urlEnv) as string, w.secretEnv ? need(w.secretEnv) : undefined)
          : `${w.urlEnv} is not set`,
    });
  }
  return Promise.all(
    jobs.map(async ({ service, make }): Promise<NotifyResult> => {
      const out = make();
      if (typeof out === 'string') {
        warn(`notification to ${service} skipped: ${out}`);
        return { service, ok: false, attempts: 0, error: out };
      }
      const r = await post(out, cfg.timeoutMs, cfg.retries);
      const error = r.error === undefined ? undefined : stripUserinfo(redactor.redact(r.error));
      if (!r.ok)
        warn(
          `notification to ${service} failed after ${r.attempts} attempt(s): ${error}; the deploy result is unaffected`,
        );
      return { service, ok: r.ok, attempts: r.attempts, error };
    }),
  );
}
