import type { HealthCheck } from '../config/types';
import { DeployError } from '../errors';
import type { HealthReport } from '../report/types';
import type { RunContext } from '../run/context';
import { formatDuration, sleep } from '../util/duration';
import { renderShellTemplate, renderTemplate } from '../util/template';
import { excerpt, probeHttp, type ProbeOptions, type ProbeResult } from './http';
import type { HealthSubject } from './subject';
import { probeTcp } from './tcp';

/** What checks need of the run: its cancellation and its redactor. */
export type HealthRun = Pick<RunContext, 'signal' | 'redactor'>;

async function probeCommand(
  subject: HealthSubject,
  check: HealthCheck,
  command: string,
  o: ProbeOptions,
): Promise<ProbeResult> {
  // Where the command runs enforces whole seconds and adds a grace period; this timer is the hard limit.
  const timer = AbortSignal.timeout(o.timeoutMs);
  try {
    const res = await subject.exec(command, {
      timeoutMs: o.timeoutMs,
      signal: AbortSignal.any([o.signal, timer]),
    });
    const out = (res.stdout + res.stderr).trim();
    const x = check.expect;
    if (x.exitCode !== undefined && res.code !== x.exitCode)
      return {
        ok: false,
        detail: `exit ${res.code ?? res.signal}, expected ${x.exitCode}: ${excerpt(out, o.redact)}`,
      };
    if (x.output !== undefined && !out.includes(x.output))
      return {
        ok: false,
        detail: `output does not contain ${JSON.stringify(x.output)}: ${excerpt(out, o.redact)}`,
      };
    if (x.outputRegex !== undefined && !new RegExp(x.outputRegex).test(out))
      return { ok: false, detail: `output does not match /${x.outputRegex}/: ${excerpt(out, o.redact)}` };
    return { ok: true, detail: `exit ${res.code}` };
  } catch (err) {
    // The attempt's own time limit fired (not the run's cancellation): a slow check, not a broken target.
    if (timer.aborted && !o.signal.aborted) return { ok: false, detail: `no result within ${o.timeoutMs}ms` };
    // A lost connection is the target's problem, not the check's: let it fail the deploy with its own class.
    if (err instanceof DeployError && err.errorClass !== 'timeout') throw err;
    return { ok: false, detail: (err as Error).message };
  }
}

async function probeComposeOf(
  subject: HealthSubject,
  check: HealthCheck,
  o: ProbeOptions,
): Promise<ProbeResult> {
  if (!subject.compose) return { ok: false, detail: `${subject.name} has no compose stack to check` };
  const timer = AbortSignal.timeout(o.timeoutMs);
  try {
    return await subject.compose(check, {
      timeoutMs: o.timeoutMs,
      signal: AbortSignal.any([o.signal, timer]),
    });
  } catch (err) {
    if (timer.aborted && !o.signal.aborted) return { ok: false, detail: `no result within ${o.timeoutMs}ms` };
    throw err;
  }
}

function probe(
  subject: HealthSubject,
  check: HealthCheck,
  target: string,
  o: ProbeOptions,
): Promise<ProbeResult> {
  switch (check.kind) {
    case 'http':
      return probeHttp(check, target, subject.release, o);
    case 'tcp':
      return probeTcp(target, o.timeoutMs, o.signal);
    case 'command':
      return probeCommand(subject, check, target, o);
    case 'compose':
      return probeComposeOf(subject, check, o);
  }
}

/** Per-probe latency of a check (every attempt, passed or failed), for the metrics. */
export interface ProbeLatency {
  lastMs: number;
  maxMs: number;
}

/**
 * A check's result as the report stores it, plus probe latency. The latency field is optional so reports written
 * before it existed still read; the report type carries it once src/report/types.ts declares it.
 */
export type HealthResult = HealthReport & { latency?: ProbeLatency };

/**
 * Runs one check against one host: waits the start period, then probes every interval until `successes`
 * consecutive passes (healthy), more than `retries` failures (unhealthy), or the deadline. A check that flaps
 * never collects K passes in a row, so it cannot promote a release.
 */
export async function runHealthCheck(
  ctx: HealthRun,
  subject: HealthSubject,
  check: HealthCheck,
): Promise<HealthResult> {
  const started = Date.now();
  const vars = subject.vars;
  const where = `health check "${check.name}"`;
  // A command check is shell code: its values are quoted so an address or host var cannot inject commands.
  const target =
    check.kind === 'compose'
      ? check.target
      : check.kind === 'command'
        ? renderShellTemplate(check.target, vars, where)
        : renderTemplate(check.target, vars, where);
  // Header values are templates too (validate checks them per target); the probe gets a rendered copy.
  const probed: HealthCheck =
    check.kind === 'http' && Object.keys(check.headers).length > 0
      ? {
          ...check,
          headers: Object.fromEntries(
            Object.entries(check.headers).map(([k, v]) => [
              k,
              renderTemplate(v, vars, `${where} header ${k}`),
            ]),
          ),
        }
      : check;
  const deadline = check.deadlineMs !== undefined ? started + check.deadlineMs : Infinity;
  if (check.startPeriodMs > 0) await sleep(Math.min(check.startPeriodMs, deadline - Date.now()), ctx.signal);
  let attempts = 0;
  let failures = 0;
  let streak = 0;
  let last: ProbeResult = { ok: false, detail: 'not run' };
  let lastFailure: string | undefined;
  let verdict: string | undefined;
  let latency: ProbeLatency | undefined;
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
    // A hard limit per attempt: the check's timeout, and never past the overall deadline.
    const timeoutMs = Math.max(1, Math.min(check.timeoutMs, deadline - Date.now()));
    const t0 = performance.now();
    last = await probe(subject, probed, target, {
      timeoutMs,
      signal: ctx.signal,
      redact: (text) => ctx.redactor.redact(text),
    });
    const ms = Math.round(performance.now() - t0);
    latency = { lastMs: ms, maxMs: Math.max(latency?.maxMs ?? 0, ms) };
    if (last.ok) {
      if (++streak >= check.successes) break;
    } else {
      streak = 0;
      // An attempt the deadline cut short says only that time ran out (the verdict says so already); the error
      // worth reporting is what the last full attempt saw.
      if (timeoutMs >= check.timeoutMs || lastFailure === undefined) lastFailure = last.detail;
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
  return { check: check.name, ok, attempts, durationMs: Date.now() - started, lastError, latency };
}

/** All checks of a stage against one host; the checks run in parallel, each with its own timing. */
export async function runHealthChecks(
  ctx: HealthRun,
  subject: HealthSubject,
  checks: HealthCheck[],
): Promise<HealthResult[]> {
  return Promise.all(checks.map((c) => runHealthCheck(ctx, subject, c)));
}
