import * as fs from 'node:fs';
import type { Config, NotifyEvent } from './config/types';
import { reportFamilies } from './metrics/from-report';
import { parseExposition, parseFamilies, render, type Family, type Labels } from './metrics/exposition';
import { pushGroups, readGroup, writeTextfile } from './metrics/publish';
import { addReport, totalsFamilies, totalsFromSamples } from './metrics/totals';
import { eventFor, type NotifyContext } from './notify/message';
import { sendNotifications } from './notify/send';
import type { EscalationReport, Report } from './report/types';
import type { Redactor } from './secrets/redact';

export interface ObserveOptions {
  env: NodeJS.ProcessEnv;
  redactor: Redactor;
  warn: (msg: string) => void;
  context: NotifyContext;
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** A URL's password, as written and decoded. */
function passwordOf(value: string): string[] {
  const u = parseUrl(value);
  return u?.password ? [u.password, decodeURIComponent(u.password)] : [];
}

/**
 * The secret parts of a webhook URL: the whole URL, its path and query (where Slack and Discord put the secret;
 * an error may quote the path alone) and any password in it.
 */
function urlSecrets(value: string): string[] {
  const u = parseUrl(value);
  const tail = u ? u.pathname + u.search : '';
  return [value, ...(tail.length >= 8 ? [tail] : []), ...passwordOf(value)];
}

/**
 * Every secret value the observability config refers to: notification tokens, webhook URLs and signing secrets,
 * and the Pushgateway password (and the Basic token made from it). The engine registers them with the redactor
 * before the run starts, so they are masked whatever event filter or error path is taken later.
 */
export function observabilitySecrets(config: Config, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  const value = (name: string | undefined) => (name ? env[name] || undefined : undefined);
  const n = config.notify;
  const tg = value(n?.telegram?.tokenEnv);
  if (tg) out.push(tg);
  for (const url of [n?.slack?.webhookEnv, n?.discord?.webhookEnv, n?.webhook?.urlEnv].map(value))
    if (url) out.push(...urlSecrets(url));
  const hmac = value(n?.webhook?.secretEnv);
  if (hmac) out.push(hmac);
  const pg = config.metrics?.pushgateway;
  if (pg) {
    const pass = value(pg.passwordEnv);
    if (pass) out.push(pass);
    // The Basic token encodes the password; without a password it hides nothing.
    if (pg.usernameEnv && pass)
      out.push(Buffer.from(`${env[pg.usernameEnv] ?? ''}:${pass}`).toString('base64'));
    // Credentials in the URL itself are refused when pushing, but must not leak from any message either.
    out.push(...passwordOf(pg.url));
  }
  return [...new Set(out)];
}

function registerSecrets(config: Config, o: ObserveOptions): void {
  for (const s of observabilitySecrets(config, o.env)) o.redactor.add(s);
}

/**
 * The `environment` label of every metric: the config's metrics.environment, else the action's environment
 * input, else the project. The dashboard's $environment variable reads this label, so run metrics, counters
 * and the history KPIs all use the same value; the config's stages are the separate `stage` label.
 */
export function metricsEnvironment(config: Config, environment?: string): string {
  return config.metrics?.environment ?? environment ?? config.project;
}

export async function notifyStarted(
  config: Config,
  release: Report['release'],
  o: ObserveOptions,
): Promise<void> {
  registerSecrets(config, o);
  if (!config.notify) return;
  await sendNotifications(
    'started',
    { project: config.project, release },
    o.context,
    config.notify,
    o.env,
    o.redactor,
    o.warn,
  );
}

/**
 * The failure budget of a fleet stage was passed: every configured notifier gets an `escalation`, whatever the
 * run's final event will be. Returns where it went, for the report.
 */
export async function notifyEscalation(
  config: Config,
  release: Report['release'],
  escalation: EscalationReport,
  o: ObserveOptions,
): Promise<{ sent: boolean; channels: string[]; error?: string }> {
  if (!config.notify || !config.notify.events.includes('escalation')) return { sent: false, channels: [] };
  const results = await sendNotifications(
    'escalation',
    { project: config.project, release, escalation },
    o.context,
    config.notify,
    o.env,
    o.redactor,
    o.warn,
  ).catch((err: unknown) => [{ service: 'webhook' as const, ok: false, attempts: 0, error: String(err) }]);
  const failed = results.filter((r) => !r.ok);
  return {
    sent: results.some((r) => r.ok),
    channels: results.filter((r) => r.ok).map((r) => r.service),
    error: failed.length ? failed.map((f) => `${f.service}: ${f.error}`).join('; ') : undefined,
  };
}

/**
 * After a run: the final notification and the run's metrics. Both are best effort with bounded time; neither can
 * change the report's status.
 */
export async function publishOutcome(
  config: Config,
  report: Report,
  o: ObserveOptions,
): Promise<{ event: NotifyEvent }> {
  registerSecrets(config, o);
  const event = eventFor(report);
  const tasks: Promise<unknown>[] = [];
  if (config.notify)
    tasks.push(sendNotifications(event, report, o.context, config.notify, o.env, o.redactor, o.warn));
  const m = config.metrics;
  if (m && (m.pushgateway || m.textfile)) {
    const environment = metricsEnvironment(config, o.context.environment);
    // The project is in every grouping key: two projects sharing a gateway and an environment name must not
    // replace each other's groups.
    const base: Labels = { project: config.project, environment };
    const { run, perHost } = reportFamilies(report, base);
    if (m.textfile) {
      try {
        const before = readIfExists(m.textfile);
        const totals = addReport(totalsFromSamples(parseExposition(before), base), report);
        // Series of other projects or environments sharing the file stay; ours are replaced by this run's.
        const ours = (l: Labels) => l.project === base.project && l.environment === base.environment;
        const others = parseFamilies(before)
          .map((f) => ({ ...f, samples: f.samples.filter((x) => !ours(x.labels)) }))
          .filter((f) => f.samples.length);
        writeTextfile(
          m.textfile,
          render(merge([others, run, totalsFamilies(totals, base), ...perHost.values()])),
        );
      } catch (err) {
        o.warn(`metrics textfile ${m.textfile}: ${o.redactor.redact((err as Error).message)}`);
      }
    }
    if (m.pushgateway) {
      const pg = m.pushgateway;
      tasks.push(
        (async () => {
          const prev = await readGroup(pg, base, o.env, o.redactor);
          const totals = addReport(totalsFromSamples(prev.samples ?? [], base), report);
          const groups = [
            { grouping: base, text: render([...run, ...totalsFamilies(totals, base)]) },
            ...[...perHost].map(([host, fams]) => ({ grouping: { ...base, host }, text: render(fams) })),
          ];
          const problems = await pushGroups(pg, groups, o.env, o.redactor);
          // One warning: when the push fails too, the read failed for the same reason.
          if (problems.length)
            o.warn(`Pushgateway: ${problems.length} push(es) failed, first: ${problems[0]}`);
          else if (prev.problem)
            o.warn(`Pushgateway: previous counters unreadable (${prev.problem}); they restart from this run`);
        })(),
      );
    }
  }
  await Promise.allSettled(tasks);
  return { event };
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Families with the same name from several groups become one family (a textfile may name each only once). */
function merge(groups: Family[][]): Family[] {
  const byName = new Map<string, Family>();
  for (const fams of groups) {
    for (const f of fams) {
      const m = byName.get(f.name);
      if (m) m.samples.push(...f.samples);
      else byName.set(f.name, { ...f, samples: [...f.samples] });
    }
  }
  return [...byName.values()];
}
