import type { HealthCheck, HostConfig } from '../config/types';
import { DeployError } from '../errors';
import { templateVars, type RunContext } from '../pipeline/context';
import type { HealthReport } from '../report/types';
import { sleep } from '../util/duration';
import { renderTemplate } from '../util/template';
import { probeHttp, type ProbeResult } from './http';

async function probeCommand(ctx: RunContext, host: HostConfig, check: HealthCheck, command: string): Promise<ProbeResult> {
  const conn = await ctx.pool.get(host.name);
  try {
    const res = await conn.exec(command, { timeoutMs: check.timeoutMs, signal: ctx.signal });
    const out = (res.stdout + res.stderr).trim();
    if (check.expect.exitCode !== undefined && res.code !== check.expect.exitCode) {
      return { ok: false, detail: `exit ${res.code ?? res.signal}, expected ${check.expect.exitCode}: ${out.slice(-200)}` };
    }
    if (check.expect.output !== undefined && !out.includes(check.expect.output)) {
      return { ok: false, detail: `output does not contain ${JSON.stringify(check.expect.output)}: ${out.slice(-200)}` };
    }
    return { ok: true, detail: `exit ${res.code}` };
  } catch (err) {
    if (err instanceof DeployError && err.errorClass !== 'timeout') throw err;
    return { ok: false, detail: (err as Error).message };
  }
}

/** Runs one check against one host until it passes or its retries are used up. */
export async function runHealthCheck(ctx: RunContext, host: HostConfig, check: HealthCheck, stage: string): Promise<HealthReport> {
  const started = Date.now();
  const vars = templateVars(ctx, host, stage);
  const target = renderTemplate(check.target, vars, `health check "${check.name}"`);
  if (check.startPeriodMs > 0) await sleep(check.startPeriodMs, ctx.signal);
  let last: ProbeResult = { ok: false, detail: 'not run' };
  let attempts = 0;
  for (let i = 0; i <= check.retries; i++) {
    if (ctx.signal.aborted) break;
    attempts++;
    last = check.kind === 'http' ? await probeHttp(check, target, ctx.signal) : await probeCommand(ctx, host, check, target);
    if (last.ok) break;
    if (i < check.retries) await sleep(check.intervalMs, ctx.signal);
  }
  return {
    check: check.name,
    ok: last.ok,
    attempts,
    durationMs: Date.now() - started,
    lastError: last.ok ? undefined : ctx.redactor.redact(last.detail),
  };
}

/** All checks of a stage against one host; the checks run in parallel, each with its own timing. */
export async function runHealthChecks(ctx: RunContext, host: HostConfig, checks: HealthCheck[], stage: string): Promise<HealthReport[]> {
  return Promise.all(checks.map((c) => runHealthCheck(ctx, host, c, stage)));
}
