import { randomBytes } from 'node:crypto';
import type { Config } from '../config/types';
import { DeployError } from '../errors';
import { runHealthChecks } from '../health/run';
import { selectRunTargets } from '../plan/plan';
import type {
  AuditRecord,
  HostFinalState,
  HostPhaseReport,
  PhaseReport,
  Report,
  RollbackReport,
} from '../report/types';
import { errorInfoWith, type RunContext, type RunInfo } from '../run/context';
import type { DeployEvent, EventListener } from '../run/events';
import type { Redactor } from '../secrets/redact';
import { createTargets, type TargetSetOptions } from '../targets';
import type { Target } from '../targets/target';
import { mapLimit } from '../util/concurrency';

export interface ManualRollbackOptions extends TargetSetOptions {
  config: Config;
  /** `previous`: what each target's rollback point names; otherwise a version every selected target has. */
  to: string;
  /** Selectors (names, globs, labels); default: every target of every stage. */
  targets?: string[];
  run?: RunInfo;
  env: NodeJS.ProcessEnv;
  redactor: Redactor;
  signal?: AbortSignal;
  onEvent?: EventListener;
  runToken?: string;
  /** Confirmed above checkpoint.above targets. */
  confirmed?: boolean;
}

const PHASE = 'rollback';

/**
 * `homelab-deploy rollback`: switches targets back to a recorded version without building anything, with the
 * same locks, audit trail and report as a deploy. Each target is locked, asked what it runs and what it can
 * return to, rolled back, checked with its stage's health checks on the old version, and unlocked; targets go
 * in parallel (`defaults.parallel`), so a fleet rolls back in the time of a few.
 */
export async function runManualRollback(opts: ManualRollbackOptions): Promise<Report> {
  const started = Date.now();
  const { config, redactor } = opts;
  const signal = opts.signal ?? new AbortController().signal;
  const runToken = opts.runToken ?? randomBytes(6).toString('hex');
  const audit: AuditRecord[] = [];
  const emit = (e: DeployEvent) => {
    try {
      void opts.onEvent?.(redactor.redactDeep(e));
    } catch {
      /* a listener must never break a rollback */
    }
  };
  const release = { id: opts.to, commit: '', ref: opts.to };
  const ctx: RunContext = {
    config,
    release: { ...release, commit: '0'.repeat(40) },
    run: opts.run ?? {},
    runToken,
    redactor,
    signal,
    env: opts.env,
    files: [],
    emit,
    audit: (action, host, detail) =>
      void audit.push({ time: new Date().toISOString(), action, host, detail }),
    errorInfo: errorInfoWith(redactor),
  };
  const stageOf = new Map<string, string>();
  for (const s of config.stages) for (const t of s.targets) stageOf.set(t, s.name);
  const names = opts.targets?.length ? selectRunTargets(config, opts.targets) : [...stageOf.keys()];
  const base: Omit<
    Report,
    'status' | 'phase' | 'systemsDeployed' | 'durationSeconds' | 'finishedAt' | 'phases' | 'hosts'
  > = {
    schema: 1,
    project: config.project,
    startedAt: new Date(started).toISOString(),
    release: { id: opts.to, commit: '', ref: opts.to },
    run: opts.run ?? {},
    phasesRequested: [PHASE],
    audit,
  };
  if (names.length > config.checkpointAbove && !opts.confirmed)
    return {
      ...base,
      status: 'aborted',
      phase: PHASE,
      systemsDeployed: [],
      durationSeconds: 0,
      finishedAt: new Date().toISOString(),
      error: {
        class: 'precondition',
        message: `this rollback would touch ${names.length} targets, more than checkpoint.above (${config.checkpointAbove}): confirm it with --yes; nothing was touched`,
        phase: PHASE,
      },
      phases: [],
      hosts: [],
    };

  const targets = createTargets(ctx, opts);
  emit({
    type: 'run-start',
    project: config.project,
    release: `rollback to ${opts.to}`,
    commit: '',
    phases: [PHASE],
  });
  emit({ type: 'phase-start', phase: PHASE, hosts: names });
  const results = await mapLimit(names, config.parallel, (name) =>
    rollbackTarget(ctx, targets.get(name), stageOf.get(name), opts.to),
  );
  await targets.closeAll();
  const phase: PhaseReport = {
    name: PHASE,
    kind: 'rollback',
    status: results.every((r) => r.host.ok) ? 'ok' : 'failed',
    startedAt: base.startedAt,
    durationMs: Date.now() - started,
    hosts: results.map((r) => r.host),
  };
  const failed = results.filter((r) => !r.host.ok);
  phase.error = failed[0]?.host.error;
  emit({
    type: 'phase-end',
    phase: PHASE,
    ok: failed.length === 0,
    durationMs: phase.durationMs,
    error: phase.error,
  });
  const durationSeconds = Math.round((Date.now() - started) / 100) / 10;
  const status: Report['status'] =
    failed.length === 0 ? 'success' : failed.length === results.length ? 'failed' : 'partial_success';
  emit({ type: 'run-end', status, durationSeconds });
  const finals = results.map((r) => r.final);
  const report: Report = {
    ...base,
    status,
    phase: PHASE,
    systemsDeployed: finals.filter((f) => f.rollback?.ok).map((f) => f.host),
    durationSeconds,
    finishedAt: new Date().toISOString(),
    error: failed.length
      ? {
          ...(failed[0].host.error ?? { class: 'internal', message: 'rollback failed' }),
          message: `rollback failed on ${failed.map((f) => f.host.host).join(', ')}: ${failed[0].host.error?.message}`,
        }
      : undefined,
    rollbackFailed: failed.some((f) => f.final.rollback && !f.final.rollback.ok) || undefined,
    phases: [phase],
    hosts: finals,
    needsAttention: failed.length ? failed.map((f) => f.host.host) : undefined,
  };
  return redactor.redactDeep(report);
}

async function rollbackTarget(
  ctx: RunContext,
  t: Target,
  stage: string | undefined,
  to: string,
): Promise<{ host: HostPhaseReport; final: HostFinalState }> {
  const t0 = Date.now();
  const rep: HostPhaseReport = {
    host: t.name,
    ok: false,
    durationMs: 0,
    attempts: [],
    steps: [],
    health: [],
  };
  const final: HostFinalState = {
    host: t.name,
    kind: t.kind,
    stage,
    before: null,
    after: null,
    state: 'unknown',
  };
  let locked = false;
  try {
    const pre = await t.preflight(PHASE);
    locked = true;
    const st = t.rollbackFacts ? await t.rollbackFacts() : await t.status();
    const current = st.current ?? pre.current;
    final.before = current;
    const target = to === 'previous' ? st.previous : to;
    if (target === undefined || target === null)
      throw new DeployError(
        'precondition',
        `${t.name} has no recorded version to return to from ${current ?? 'nothing'} (no rollback point, no release-log line)`,
        { host: t.name },
      );
    if (to !== 'previous' && st.releases && !st.releases.includes(target) && target !== current)
      throw new DeployError(
        'precondition',
        `${t.name} has no release ${JSON.stringify(target)} to return to; it has ${st.releases.join(', ') || 'none'}`,
        { host: t.name },
      );
    const rb: RollbackReport = { ok: false, to: target, durationMs: 0 };
    if (target === current) {
      rb.ok = true;
      rep.detail = { unchanged: true };
    } else {
      const out = await t.rollback({ stage: stage ?? PHASE, to: target, from: current ?? undefined });
      rep.steps = out.steps;
      if (!out.ok)
        throw new DeployError(
          'command-failed',
          `rollback step "${out.failed?.name}" on ${t.name} failed: ${(out.failed?.output ?? '').trim().slice(-300)}`,
          { host: t.name },
        );
      const checks = ctx.config.stages.find((s) => s.name === stage)?.health ?? [];
      if (checks.length) {
        rep.health = await runHealthChecks(ctx, t.healthSubject(stage ?? PHASE, target), checks);
        const bad = rep.health.filter((h) => !h.ok);
        if (bad.length)
          throw new DeployError(
            'health-failed',
            `${t.name} after rollback to ${target}: ${bad.map((b) => `${b.check}: ${b.lastError}`).join('; ')}`,
            { host: t.name },
          );
      }
      rb.ok = true;
      ctx.audit('rollback', t.name, `to ${target} (manual)`);
    }
    rb.durationMs = Date.now() - t0;
    rep.rollback = rb;
    rep.ok = true;
    final.after = target;
    final.state = 'previous';
    final.rollback = rb;
  } catch (err) {
    rep.error = ctx.errorInfo(err, { host: t.name, phase: PHASE });
    final.rollback = {
      ok: false,
      to: to === 'previous' ? null : to,
      durationMs: Date.now() - t0,
      error: rep.error,
    };
    const cur = await t.readCurrent().catch(() => undefined);
    if (cur) {
      final.after = cur.version;
      final.state = cur.version === null ? 'none' : 'previous';
    }
  } finally {
    if (locked) await t.releaseLock().catch(() => false);
    await t.close().catch(() => undefined);
  }
  rep.durationMs = Date.now() - t0;
  ctx.emit({
    type: 'host-end',
    phase: PHASE,
    host: t.name,
    ok: rep.ok,
    durationMs: rep.durationMs,
    error: rep.error,
    attempt: 1,
  });
  return { host: rep, final };
}
