import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MetricsSettings } from '../config/types';
import { mapLimit } from '../remote/semaphore';
import type { Redactor } from '../secrets/redact';

/** Pushgateway grouping-key path: values with '/' (or empty) use the documented `@base64` form. */
export function groupingPath(job: string, grouping: Record<string, string>): string {
  const seg = (k: string, v: string) =>
    v === '' || v.includes('/')
      ? `/${k}@base64/${Buffer.from(v).toString('base64url') || '='}`
      : `/${k}/${encodeURIComponent(v)}`;
  return (
    `/metrics/job/${encodeURIComponent(job)}` +
    Object.entries(grouping)
      .map(([k, v]) => seg(k, v))
      .join('')
  );
}

/**
 * PUTs each group (replacing that group's previous metrics, which is what "latest run" gauges want). Returns
 * problems as strings; never throws, so a metrics outage never fails a deploy.
 */
export async function pushGroups(
  cfg: NonNullable<MetricsSettings['pushgateway']>,
  groups: { grouping: Record<string, string>; text: string }[],
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
  timeoutMs = 5000,
): Promise<string[]> {
  const headers: Record<string, string> = { 'content-type': 'text/plain; version=0.0.4' };
  if (cfg.usernameEnv) {
    const user = env[cfg.usernameEnv] ?? '';
    const pass = cfg.passwordEnv ? (env[cfg.passwordEnv] ?? '') : '';
    redactor.add(pass);
    const token = Buffer.from(`${user}:${pass}`).toString('base64');
    redactor.add(token);
    headers.authorization = `Basic ${token}`;
  }
  const problems: string[] = [];
  await mapLimit(groups, 8, async (g) => {
    const url = cfg.url + groupingPath(cfg.job, g.grouping);
    try {
      const res = await fetch(url, {
        method: 'PUT',
        headers,
        body: g.text,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = await res.text();
      if (!res.ok)
        problems.push(`PUT ${groupingPath(cfg.job, g.grouping)}: HTTP ${res.status} ${body.slice(0, 200)}`);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      problems.push(
        `PUT ${groupingPath(cfg.job, g.grouping)}: ${e.name === 'TimeoutError' ? 'timed out' : (e.cause?.code ?? e.message)}`,
      );
    }
  });
  return problems.map((p) => redactor.redact(p));
}

/** node_exporter's textfile collector reads whole files: write a temp file in the same folder and rename it. */
export function writeTextfile(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
}
