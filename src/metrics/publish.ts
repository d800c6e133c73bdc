import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MetricsSettings } from '../config/types';
import { mapLimit } from '../util/concurrency';
import type { Redactor } from '../secrets/redact';
import type { ParsedSample } from './exposition';
import { stripUserinfo } from '../util/url';

type PushgatewaySettings = NonNullable<MetricsSettings['pushgateway']>;

/**
 * Pushgateway grouping-key path. A value with '/' (or an empty one) uses the documented `@base64` form, the job
 * too: the gateway decodes %2F before splitting the path, so percent-encoding a '/' is not enough.
 */
export function groupingPath(job: string, grouping: Record<string, string>): string {
  const seg = (k: string, v: string) =>
    v === '' || v.includes('/')
      ? `/${k}@base64/${Buffer.from(v).toString('base64url') || '='}`
      : `/${k}/${encodeURIComponent(v)}`;
  return (
    '/metrics' +
    Object.entries({ job, ...grouping })
      .map(([k, v]) => seg(k, v))
      .join('')
  );
}

/**
 * The gateway's base URL, or why it cannot be used. Credentials in the URL are refused rather than used: the URL
 * lives in the committed config file and appears in error messages; they belong in username_env/password_env.
 */
function baseUrl(cfg: PushgatewaySettings): { url?: string; problem?: string } {
  let u: URL;
  try {
    u = new URL(cfg.url);
  } catch {
    return { problem: `Pushgateway URL ${JSON.stringify(stripUserinfo(cfg.url))} is not a valid URL` };
  }
  if (u.username || u.password)
    return {
      problem: `the Pushgateway URL carries credentials (user:password@); remove them and set username_env/password_env instead`,
    };
  return { url: cfg.url.replace(/\/+$/, '') };
}

function authHeaders(cfg: PushgatewaySettings, env: NodeJS.ProcessEnv, redactor: Redactor) {
  const headers: Record<string, string> = {};
  if (cfg.usernameEnv) {
    const user = env[cfg.usernameEnv] ?? '';
    const pass = cfg.passwordEnv ? (env[cfg.passwordEnv] ?? '') : '';
    redactor.add(pass);
    const token = Buffer.from(`${user}:${pass}`).toString('base64');
    redactor.add(token);
    headers.authorization = `Basic ${token}`;
  }
  return headers;
}

const failure = (err: unknown) => {
  const e = err as Error & { cause?: { code?: string } };
  return e.name === 'TimeoutError' ? 'timed out' : (e.cause?.code ?? e.message);
};

/**
 * PUTs each group (replacing that group's previous metrics, which is what "latest run" gauges want). Returns
 * problems as strings; never throws, so a metrics outage never fails a deploy.
 */
export async function pushGroups(
  cfg: PushgatewaySettings,
  groups: { grouping: Record<string, string>; text: string }[],
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
  timeoutMs = 5000,
): Promise<string[]> {
  const base = baseUrl(cfg);
  if (!base.url) return [base.problem as string];
  const headers = { ...authHeaders(cfg, env, redactor), 'content-type': 'text/plain; version=0.0.4' };
  const problems: string[] = [];
  await mapLimit(groups, 8, async (g) => {
    const where = groupingPath(cfg.job, g.grouping);
    try {
      const res = await fetch(base.url + where, {
        method: 'PUT',
        headers,
        body: g.text,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = await res.text();
      if (!res.ok) problems.push(`PUT ${where}: HTTP ${res.status} ${body.slice(0, 200)}`);
    } catch (err) {
      problems.push(`PUT ${where}: ${failure(err)}`);
    }
  });
  return problems.map((p) => stripUserinfo(redactor.redact(p)));
}

interface ApiGroup {
  labels: Record<string, string>;
  [metric: string]: unknown;
}

/**
 * The samples the gateway holds for exactly one group (GET /api/v1/metrics, Pushgateway 1.0 and later), so
 * counters can be carried forward: a PUT replaces the whole group, so whatever is not pushed again is gone.
 * `samples` is undefined when the gateway could not be read; an absent group is an empty list.
 */
export async function readGroup(
  cfg: PushgatewaySettings,
  grouping: Record<string, string>,
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
  timeoutMs = 5000,
): Promise<{ samples?: ParsedSample[]; problem?: string }> {
  const base = baseUrl(cfg);
  if (!base.url) return { problem: base.problem };
  const want: Record<string, string> = { job: cfg.job, ...grouping };
  try {
    const res = await fetch(`${base.url}/api/v1/metrics`, {
      headers: authHeaders(cfg, env, redactor),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok)
      return { problem: stripUserinfo(redactor.redact(`GET /api/v1/metrics: HTTP ${res.status}`)) };
    const groups = (JSON.parse(text) as { data?: ApiGroup[] }).data ?? [];
    const group = groups.find((g) => {
      const keys = Object.keys(g.labels ?? {});
      return keys.length === Object.keys(want).length && keys.every((k) => g.labels[k] === want[k]);
    });
    const samples: ParsedSample[] = [];
    for (const [name, fam] of Object.entries(group ?? {})) {
      const metrics = (fam as { metrics?: { labels?: Record<string, string>; value?: string }[] })?.metrics;
      if (!Array.isArray(metrics)) continue;
      for (const m of metrics)
        if (m.value !== undefined) samples.push({ name, labels: m.labels ?? {}, value: Number(m.value) });
    }
    return { samples };
  } catch (err) {
    return { problem: stripUserinfo(redactor.redact(`GET /api/v1/metrics: ${failure(err)}`)) };
  }
}

/** node_exporter's textfile collector reads whole files: write a temp file in the same folder and rename it. */
export function writeTextfile(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
}
