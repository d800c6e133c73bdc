import type { HealthCheck, HostConfig } from '../config/types';
import { DeployError } from '../errors';
import { templateVars, type RunContext } from '../pipeline/context';
import type { HealthReport } from '../report/types';
import { formatDuration, sleep } from '../util/duration';
import { renderTemplate } from '../util/template';
import { probeCompose } from './compose';
import { excerpt, probeHttp, type ProbeResult } from './http';
import { probeTcp } from './tcp';

async function probeCommand(
  ctx: RunContext,
  host: HostConfig,
  check: HealthCheck,
  command: string,
): Promise<ProbeResult> {
  const conn = await ctx.pool.get(host.name);
  try {
    const res = await conn.exec(command, { timeoutMs: check.timeoutMs, signal: ctx.signal });
    const out = (res.stdout + res.stderr).trim();
    const x = check.expect;
    if (x.exitCode !== undefined && res.code !== x.exitCode)
      return { ok: false, detail: `exit ${res.code ?? res.signal}, expected ${x.exitCode}: ${excerpt(out)}` };
    if (x.output !== undefined && !out.includes(x.output))
      return { ok: false, detail: `output does not contain ${JSON.stringify(x.output)}: ${excerpt(out)}` };
    if (x.outputRegex !== undefined && !new RegExp(x.outputRegex).test(out))
      return { ok: false, detail: `output does not match /${x.outputRegex}/: ${excerpt(out)}` };
    return { ok: true, detail: `exit ${res.code}` };
  } catch (err) {
    // A lost connection is the host's problem, not the check's: let it fail the deploy with its own class.
    if (err instanceof DeployError && err.errorClass !== 'timeout') throw err;
    return { ok: false, detail: (err as Error).message };
  }
}

function probe(ctx: RunContext, host: HostConfig, check: HealthCheck, target: string): Promise<ProbeResult> {
  switch (check.kind) {
    case 'http':
      return probeHttp(check, target, ctx.release.id, ctx.signal);
    case 'tcp':
      return probeTcp(target, check.timeoutMs, ctx.signal);
    case 'command':
      return probeCommand(ctx, host, check, target);
    case 'compose':
      return probeCompose(ctx, host, check);
  }
}

/**
 * Runs one check against one host: waits the start period, then probes every interval until `successes`
 * consecutive passes (healthy), more than `retries` failures (unhealthy), or the deadline. A check that flaps
 * never collects K passes in a row, so it cannot promote a release.
 */
export async function runHealthCheck(
  ctx: RunContext,
  host: HostConfig,
  check: HealthCheck,
  stage: string,
): Promise<HealthReport> {
  const started = Date.now();
  const target =
    check.kind === 'compose'
      ? check.target
      : renderTemplate(check.target, templateVars(ctx, host, stage), `health check "${check.name}"`);
  const deadline = check.deadlineMs !== undefined ? started + check.deadlineMs : Infinity;
  if (check.startPeriodMs > 0) await sleep(Math.min(check.startPeriodMs, deadline - Date.now()), ctx.signal);
  let attempts = 0;
  let failures = 0;
  let streak = 0;
  let last: ProbeResult = { ok: false, detail: 'not run' };
  let lastFailure: string | undefined;
  let verdict: string | undefined;
  for (;;) {
    if (ctx.signal.aborted) {
      verdict = 'cancelled';
      break;
    }
    if (Date.now() >= deadline) {
      verdict = `deadline of ${formatDuration(check.deadlineMs ?? 0)} reached after ${attempts} attempts (${streak}/${check.successes} consecutive passes)`;
      break;
    }
    attempts++;
    last = await probe(ctx, host, check, target);
    if (last.ok) {
      if (++streak >= check.successes) break;
    } else {
      streak = 0;
      lastFailure = last.detail;
      if (++failures > check.retries) break;
    }
    await sleep(Math.min(check.intervalMs, Math.max(0, deadline - Date.now())), ctx.signal);
  }
  const ok = streak >= check.successes && !verdict;
  let lastError: string | undefined;
  if (!ok) {
    const why =
      verdict ??
      (failures > check.retries ? `failed ${failures} times (retries: ${check.retries})` : 'unhealthy');
    lastError = ctx.redactor.redact(`${why}; last error: ${lastFailure ?? last.detail}`);
  }
  return { check: check.name, ok, attempts, durationMs: Date.now() - started, lastError };
}

/** All checks of a stage against one host; the checks run in parallel, each with its own timing. */
export async function runHealthChecks(
  ctx: RunContext,
  host: HostConfig,
  checks: HealthCheck[],
  stage: string,
): Promise<HealthReport[]> {
  return Promise.all(checks.map((c) => runHealthCheck(ctx, host, c, stage)));
}
