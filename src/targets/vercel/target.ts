import type { VercelTargetConfig } from '../../config/types';
import { lockOwner } from '../lock-owner';
import { DeployError, toDeployError } from '../../errors';
import type { StepReport } from '../../report/types';
import type { RunContext } from '../../run/context';
import { formatDuration, sleep } from '../../util/duration';
import type { TemplateVars } from '../../util/template';
import { ProcessGroups, runLocal } from '../runner/exec';
import type { StateStore } from '../state/store';
import type {
  DeployOptions,
  DeployOutcome,
  LockOwner,
  OperatorLockRelease,
  PreflightOutcome,
  RollbackOptions,
  RollbackOutcome,
  RollbackPoint,
  SnapshotOutcome,
  HealthSubject,
  Target,
  TargetStatus,
} from '../target';
import type { CallOptions, VercelApi } from './api';
import { QUOTA } from './errors';
import type { VercelPacing } from './pacing';
import {
  createDeploymentBody,
  deploymentMeta,
  fileDigests,
  fileEntries,
  gitSourceFor,
  META,
  pointFromMeta,
  type BuildKind,
} from './requests';
import type { DeploymentView, ProjectView } from './types';

/**
 * A Vercel project as a deploy target. The release goes live in three moves, each of which leaves production as it
 * was when it fails: build a deployment that gets no production domains (a staged production build, or a preview),
 * check it on its own URL, then promote it, which points the production domains at it without a rebuild. The
 * rollback point is the production deployment found in pre-flight; rollback is Vercel's instant rollback to it.
 *
 * Facts this relies on (Vercel docs "Promoting Deployments", "Instant Rollback", the CLI's promote/rollback):
 * a production deployment created with `autoAssignCustomDomains: false` is staged (readySubstate STAGED) until
 * promoted; a preview cannot be promoted as it is, only rebuilt for production (POST /v13/deployments with its
 * `deploymentId` and `target: production`); promote and rollback switch domains asynchronously, and the project's
 * `lastAliasRequest` (type, jobStatus, toDeploymentId) and `targets.production` tell when the switch is done; after
 * an instant rollback Vercel stops assigning production domains to new builds by itself, which does not affect
 * this target because it always promotes explicitly. Hobby teams can roll back only to the previous production
 * deployment, which is exactly the one recorded.
 */

export interface VercelTimings {
  /** How long a promote or rollback may take until the project's production deployment is the new one. */
  promoteTimeoutMs: number;
  /** How long, after the switch, until every configured domain lists the new deployment among its aliases. */
  domainsTimeoutMs: number;
}

export const DEFAULT_VERCEL_TIMINGS: VercelTimings = { promoteTimeoutMs: 180_000, domainsTimeoutMs: 60_000 };

export interface VercelTargetShared {
  /** One client and one pacing per team and token, shared by every Vercel target of the run. */
  api: VercelApi;
  pacing: VercelPacing;
  store: StateStore;
  timings?: Partial<VercelTimings>;
}

const TERMINAL = new Set(['READY', 'ERROR', 'CANCELED']);

type BuildResult =
  | { ok: true; deployment: DeploymentView; step: StepReport }
  | { ok: false; deployment: DeploymentView; step: StepReport };

/** Limits a call by wall time with a plain timer; `parent` (the run's cancellation) aborts it too. */
function boundedSignal(ms: number, parent?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const onAbort = () => ac.abort();
  if (parent?.aborted) ac.abort();
  else parent?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ac.signal,
    dispose: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onAbort);
    },
  };
}

export class VercelTarget implements Target {
  readonly kind = 'vercel' as const;
  readonly name: string;
  private readonly timings: VercelTimings;
  private project?: ProjectView;
  /** A READY build of this release from an earlier attempt of this run, not yet live: a retry checks it again. */
  private candidate?: DeploymentView;
  /** The deployment this run made production. */
  private live?: DeploymentView;
  private readonly building = new Set<string>();
  /** Counts kill() calls: a create in flight while one ran is cancelled once its answer names the deployment. */
  private kills = 0;
  private readonly urls = new Map<string, string>();
  /** Deployment id → the release this tool deployed there (its meta), for old versions' health checks. */
  private readonly releases = new Map<string, string>();
  private readonly groups = new ProcessGroups();

  constructor(
    private readonly ctx: RunContext,
    readonly config: VercelTargetConfig,
    private readonly shared: VercelTargetShared,
  ) {
    this.name = config.name;
    this.timings = { ...DEFAULT_VERCEL_TIMINGS, ...shared.timings };
  }

  private get api(): VercelApi {
    return this.shared.api;
  }

  private get pacing(): VercelPacing {
    return this.shared.pacing;
  }

  private get store(): StateStore {
    return this.shared.store;
  }

  private call(what: string, signal?: AbortSignal): CallOptions {
    return { what: `${this.name}: ${what}`, signal };
  }

  private remember(d: { id: string; url: string; meta?: Record<string, string> }): void {
    if (d.url) this.urls.set(d.id, d.url);
    const rel = d.meta?.[META.release];
    if (rel) this.releases.set(d.id, rel);
  }

  private async readProject(what: string, signal?: AbortSignal): Promise<ProjectView> {
    const p = await this.api.getProject(this.config.project, this.call(what, signal));
    this.project = p;
    if (p.production) this.remember(p.production);
    return p;
  }

  private lockOwner(phase: string): LockOwner {
    return lockOwner(this.ctx, this.name, phase);
  }

  async preflight(phase: string): Promise<PreflightOutcome> {
    this.api.bearer(`${this.name}: pre-flight`);
    const project = await this.readProject('pre-flight');
    const prod = project.production;
    const current = prod?.id ?? null;
    if (prod && this.config.domains.length > 0) {
      // A domain that does not follow production now would not follow a promotion either: refuse before touching.
      const aliases = (await this.api.listAliases(prod.id, this.call('pre-flight'))).map((a) => a.alias);
      const missing = this.config.domains.filter((d) => !aliases.includes(d));
      if (missing.length > 0)
        throw new DeployError(
          'config',
          `${this.name}: ${missing.join(', ')} ${missing.length === 1 ? 'does' : 'do'} not point at the production deployment ${prod.id} of project ${project.name} (its aliases: ${aliases.join(', ') || 'none'}), so a promotion would not move ${missing.length === 1 ? 'it' : 'them'}; check targets.${this.name}.domains against the project's domains on Vercel`,
          { host: this.name, phase },
        );
    }
    const r = await this.store.lock(this.name, this.lockOwner(phase), {
      staleAfterMs: this.ctx.config.lock.staleAfterMs,
      takeoverStale: this.ctx.config.lock.takeoverStale,
    });
    if (!r.ok) {
      const h = r.holder;
      const who = h
        ? `${h.actor ?? 'unknown actor'} (run ${h.runUrl ?? h.runId ?? h.token}, commit ${h.commit.slice(0, 12)}, phase ${h.phase}) since ${h.startedAt}`
        : 'an unknown owner (no readable owner record)';
      throw new DeployError(
        'lock-held',
        `${this.name} is locked by ${who}; last heartbeat ${r.ageSeconds}s ago (lock kept in ${this.store.describe})`,
        { host: this.name, phase },
      );
    }
    return {
      current,
      onNew: !this.ctx.force && prod?.meta[META.release] === this.ctx.release.id,
      prepared: false,
      lock: r.ours ? 'ours' : 'tookOverFrom' in r ? 'taken-over' : 'acquired',
      detail: {
        project: project.id,
        production: current,
        productionUrl: prod?.url ? `https://${prod.url}` : null,
        state: this.store.describe,
      },
    };
  }

  heartbeat(): Promise<boolean> {
    return this.store.heartbeat(this.name, this.ctx.runToken);
  }

  releaseLock(): Promise<boolean> {
    return this.store.unlock(this.name, this.ctx.runToken);
  }

  async snapshot(previous: string | null | undefined): Promise<SnapshotOutcome> {
    if (previous === undefined) return { point: await this.readRollbackPoint() };
    const point: RollbackPoint = {
      release: this.ctx.release.id,
      previous,
      recordedAt: new Date().toISOString(),
      runId: this.ctx.run.id,
      token: this.ctx.runToken,
    };
    await this.store.writeRollbackPoint(this.name, point);
    await this.store.appendAudit(this.name, {
      time: point.recordedAt,
      action: 'snapshot',
      host: this.name,
      release: point.release,
      previous,
      runId: this.ctx.run.id,
    });
    return { point };
  }

  async readRollbackPoint(): Promise<RollbackPoint | undefined> {
    const stored = await this.store.readRollbackPoint(this.name, this.ctx.release.id);
    if (stored) return stored;
    // Another runner's job recorded it: the live deployment's metadata says where its rollback returns to.
    const prod = (await this.readProject('read rollback point')).production;
    return pointFromMeta(prod?.meta, this.ctx.release.id, prod?.createdAt);
  }

  private buildBody(
    kind: BuildKind,
    stage: string,
    previous: string | null,
    project: ProjectView,
    from?: string,
  ) {
    const { ctx, config } = this;
    const meta = deploymentMeta({
      release: ctx.release.id,
      commit: ctx.release.commit,
      previous,
      runId: ctx.run.id,
      stage,
      recordedAt: new Date().toISOString(),
    });
    if (kind === 'production-from-preview')
      return {
        body: createDeploymentBody({
          kind,
          projectId: project.id,
          projectName: project.name,
          meta,
          fromDeployment: from,
        }),
      };
    if (config.source.type === 'git')
      return {
        body: createDeploymentBody({
          kind,
          projectId: project.id,
          projectName: project.name,
          meta,
          gitSource: gitSourceFor(this.name, config.source, ctx.release),
        }),
      };
    if (ctx.files.length === 0)
      throw new DeployError(
        'config',
        `targets.${this.name}.source: files, but the release has no files to upload (is the config's source directory empty?)`,
      );
    const digests = fileDigests(ctx.files);
    return {
      body: createDeploymentBody({
        kind,
        projectId: project.id,
        projectName: project.name,
        meta,
        files: fileEntries(digests),
      }),
      digests,
    };
  }

  /** Creates one deployment within the build limit and waits for its end; a failed build resolves, it does not throw. */
  private async build(
    kind: BuildKind,
    stage: string,
    previous: string | null,
    from?: string,
  ): Promise<BuildResult> {
    const what =
      kind === 'preview'
        ? 'preview build'
        : kind === 'production-from-preview'
          ? 'production build of the checked preview'
          : 'staged production build';
    const project = this.project ?? (await this.readProject(what));
    const { body, digests } = this.buildBody(kind, stage, previous, project, from);
    const t0 = Date.now();
    // Uploads first: they count against no quota, and a slow upload must not hold one of the team's build slots.
    if (digests) await this.api.ensureUploaded(digests, this.call(what));
    const slot = await this.pacing.startBuild(`${this.name}: ${what}`, this.ctx.signal);
    let created: DeploymentView | undefined;
    const killsBefore = this.kills;
    try {
      try {
        created = await this.api.createDeployment(body, this.call(what));
      } catch (e) {
        // Refused outright (auth, config, a state conflict): Vercel created nothing, so nothing counts.
        const c = toDeployError(e).errorClass;
        if (c === 'auth' || c === 'config' || c === 'precondition' || c === QUOTA) slot.unreserve();
        throw e;
      }
      slot.created();
      this.building.add(created.id);
      this.remember(created);
      // kill() may have run while the create was in flight: it could not know this id yet.
      if (this.kills !== killsBefore) await this.cancelQuietly(created.id);
      const final = await this.waitBuild(created, what);
      this.remember(final);
      const ok = final.readyState === 'READY';
      const why = [final.errorCode, final.errorMessage, final.readyStateReason].filter(Boolean).join(': ');
      const step: StepReport = {
        name:
          kind === 'preview'
            ? 'build-preview'
            : kind === 'production-from-preview'
              ? 'build-production'
              : 'build',
        command: `POST /v13/deployments (${kind === 'preview' ? 'preview' : 'target production, no domains'}) → ${final.id}`,
        exitCode: ok ? 0 : final.readyState === 'CANCELED' ? null : 1,
        durationMs: Date.now() - t0,
        ok,
        output: this.ctx.redactor.redact(
          `deployment ${final.id} ${final.readyState}${final.url ? ` at https://${final.url}` : ''}${why ? `: ${why}` : ''}`,
        ),
      };
      return ok ? { ok: true, deployment: final, step } : { ok: false, deployment: final, step };
    } finally {
      if (created) this.building.delete(created.id);
      slot.done();
    }
  }

  /**
   * Polls until the build ends. Whenever we stop waiting before that (the build limit, a BLOCKED deployment, the
   * run cancelled, an error while polling), the build is cancelled: nobody would promote it, and it would hold
   * one of the team's concurrent builds.
   */
  private async waitBuild(created: DeploymentView, what: string): Promise<DeploymentView> {
    const deadline = Date.now() + this.config.buildTimeoutMs;
    let d = created;
    try {
      while (!TERMINAL.has(d.readyState)) {
        if (d.readyState === 'BLOCKED')
          throw new DeployError(
            'precondition',
            `${this.name}: deployment ${d.id} is BLOCKED by Vercel${d.readyStateReason ? ` (${d.readyStateReason})` : ''}; it waits for someone on the team to allow it and was cancelled`,
            { host: this.name },
          );
        const left = deadline - Date.now();
        if (left <= 0)
          throw new DeployError(
            'timeout',
            `${this.name}: deployment ${d.id} was still ${d.readyState} after ${formatDuration(this.config.buildTimeoutMs)} (build_timeout); it was cancelled`,
            { host: this.name },
          );
        await sleep(Math.min(this.config.pollIntervalMs, left), this.ctx.signal);
        if (this.ctx.signal.aborted)
          throw new DeployError('cancelled', `${this.name}: cancelled during the build`);
        d = await this.api.getDeployment(d.id, this.call(what));
      }
      return d;
    } catch (e) {
      await this.cancelQuietly(d.id);
      if (this.ctx.signal.aborted && toDeployError(e).errorClass === 'cancelled')
        throw new DeployError(
          'cancelled',
          `${this.name}: cancelled while deployment ${d.id} was ${d.readyState}; it was cancelled`,
          {
            host: this.name,
          },
        );
      throw e;
    }
  }

  private async cancelQuietly(id: string): Promise<void> {
    // The run's signal may be the reason we cancel; the cancel request gets its own short limit.
    const b = boundedSignal(15_000);
    try {
      await this.api.cancelDeployment(id, this.call('cancel build', b.signal));
    } catch {
      /* already ended, or Vercel cannot be reached: the build ends by its own limit */
    } finally {
      b.dispose();
    }
  }

  async deploy(opts: DeployOptions): Promise<DeployOutcome> {
    const steps: StepReport[] = [];
    const fail = (step: StepReport, switched: boolean, extra: Partial<DeployOutcome> = {}): DeployOutcome => {
      steps.push(step);
      return { ok: false, switched, steps, failed: step, ...extra };
    };
    const mode = this.config.promote;
    let cand = this.candidate;
    if (!cand || cand.meta[META.release] !== this.ctx.release.id) {
      const r = await this.build(
        mode === 'preview' ? 'preview' : 'staged-production',
        opts.stage,
        opts.previous,
      );
      if (!r.ok) return fail(r.step, false, { detail: this.detail(r.deployment) });
      steps.push(r.step);
      cand = r.deployment;
      this.candidate = cand;
    }
    // Throws HealthFailed when unhealthy: nothing was switched, production still serves the previous deployment.
    const health = await opts.checkBeforeActivate(this.subjectFor(opts.stage, cand, this.ctx.release.id));
    let live = cand;
    if (mode === 'preview') {
      const r = await this.build('production-from-preview', opts.stage, opts.previous, cand.id);
      if (!r.ok) return fail(r.step, false, { health, detail: this.detail(r.deployment) });
      steps.push(r.step);
      live = r.deployment;
    }
    const project = this.project ?? (await this.readProject('promote'));
    const t0 = Date.now();
    try {
      await this.api.promote(project.id, live.id, this.call('promote'));
    } catch (e) {
      const err = toDeployError(e);
      if (err.errorClass === 'cancelled') throw err;
      // The request may have reached Vercel before the answer was lost: count it as switched.
      return fail(this.failedStep('promote', t0, err), true, {
        health,
        detail: { errorClass: err.errorClass },
      });
    }
    try {
      await this.waitProduction(live.id, 'promote', this.ctx.signal);
    } catch (e) {
      const err = toDeployError(e);
      if (err.errorClass === 'cancelled') throw err;
      return fail(this.failedStep('promote', t0, err), true, {
        health,
        detail: { errorClass: err.errorClass },
      });
    }
    steps.push({
      name: 'promote',
      command: `POST /v10/projects/${project.id}/promote/${live.id}`,
      exitCode: 0,
      durationMs: Date.now() - t0,
      ok: true,
      output: `production of ${project.name} is ${live.id}`,
    });
    this.live = live;
    this.candidate = undefined;
    const t1 = Date.now();
    try {
      const out = await this.waitDomains(live.id, this.ctx.signal);
      if (out)
        steps.push({ name: 'domains', exitCode: 0, durationMs: Date.now() - t1, ok: true, output: out });
    } catch (e) {
      const err = toDeployError(e);
      if (err.errorClass === 'cancelled') throw err;
      return fail(this.failedStep('domains', t1, err), true, {
        health,
        version: live.id,
        detail: { errorClass: err.errorClass },
      });
    }
    return { ok: true, switched: true, version: live.id, steps, health, detail: this.detail(live) };
  }

  private failedStep(name: string, t0: number, err: DeployError): StepReport {
    return {
      name,
      exitCode: null,
      durationMs: Date.now() - t0,
      ok: false,
      output: this.ctx.redactor.redact(`${err.errorClass}: ${err.message}`),
    };
  }

  private detail(d: DeploymentView): Record<string, string | number | boolean | null> {
    return {
      deployment: d.id,
      readyState: d.readyState,
      url: d.url ? `https://${d.url}` : null,
      errorCode: d.errorCode ?? null,
    };
  }

  /** Polls the project until its production deployment is `id`; a failed switch job or the deadline throws. */
  private async waitProduction(id: string, kind: 'promote' | 'rollback', signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.timings.promoteTimeoutMs;
    for (;;) {
      const p = await this.readProject(`wait for ${kind}`, signal);
      if (p.production?.id === id) return;
      const job = p.lastAliasRequest;
      if (job && job.toDeploymentId === id && job.jobStatus === 'failed')
        throw new DeployError(
          'command-failed',
          `${this.name}: Vercel's ${kind} of ${p.name} to ${id} failed (lastAliasRequest.jobStatus failed); production is still ${p.production?.id ?? 'none'}`,
          { host: this.name },
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new DeployError(
          'timeout',
          `${this.name}: ${kind} of ${p.name} to ${id} was not done after ${formatDuration(this.timings.promoteTimeoutMs)}; production is still ${p.production?.id ?? 'none'}${job ? ` (job ${job.type} → ${job.toDeploymentId}: ${job.jobStatus})` : ''}`,
          { host: this.name },
        );
      await sleep(Math.min(this.config.pollIntervalMs, left), signal);
      if (signal.aborted)
        throw new DeployError('cancelled', `${this.name}: cancelled while waiting for the ${kind}`);
    }
  }

  /** Waits until every configured domain is an alias of `id`; the text for the step, or undefined without domains. */
  private async waitDomains(id: string, signal: AbortSignal): Promise<string | undefined> {
    const domains = this.config.domains;
    if (domains.length === 0) return undefined;
    const deadline = Date.now() + this.timings.domainsTimeoutMs;
    for (;;) {
      const aliases = (await this.api.listAliases(id, this.call('check domains', signal))).map(
        (a) => a.alias,
      );
      const missing = domains.filter((d) => !aliases.includes(d));
      if (missing.length === 0) return `${domains.join(', ')} → ${id}`;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new DeployError(
          'health-failed',
          `${this.name}: after ${formatDuration(this.timings.domainsTimeoutMs)}, ${missing.join(', ')} still ${missing.length === 1 ? 'does' : 'do'} not point at ${id} (its aliases: ${aliases.join(', ') || 'none'})`,
          { host: this.name },
        );
      await sleep(Math.min(this.config.pollIntervalMs, left), signal);
      if (signal.aborted)
        throw new DeployError('cancelled', `${this.name}: cancelled while checking domains`);
    }
  }

  private vars(stage: string, deployment?: { id: string; url?: string }): TemplateVars {
    const { ctx, config } = this;
    const domain = config.domains[0];
    const own = deployment?.url ? `https://${deployment.url}` : undefined;
    const prodUrl = this.project?.production?.url;
    const vars: TemplateVars = {
      'target.name': this.name,
      'target.kind': 'vercel',
      'target.project': config.project,
      // A deployment's own URL: `url` is a host name without scheme, served over HTTPS.
      'target.url': own ?? (domain ? `https://${domain}` : undefined),
      'target.deployment': deployment?.id,
      'target.deployment_url': own,
      'target.domain': domain,
      'target.production_url': domain ? `https://${domain}` : prodUrl ? `https://${prodUrl}` : undefined,
      'release.id': ctx.release.id,
      'release.commit': ctx.release.commit,
      project: ctx.config.project,
      'stage.name': stage,
    };
    for (const [k, v] of Object.entries(config.vars)) vars[`target.vars.${k}`] = v;
    return vars;
  }

  /**
   * A deployment's health subject. The release a check's marker must see is this run's for its own deployments;
   * an older deployment's is the one its meta names, and unknown for one this tool did not make (then markers are
   * not checked: any release answering is the old one).
   */
  private subjectFor(
    stage: string,
    deployment: { id: string; url?: string } | undefined,
    release: string | undefined,
  ): HealthSubject {
    const { ctx } = this;
    const env: Record<string, string> = {
      HD_PROJECT: ctx.config.project,
      HD_TARGET: this.name,
      HD_RELEASE: ctx.release.id,
      HD_COMMIT: ctx.release.commit,
      HD_STAGE: stage,
    };
    const vars = this.vars(stage, deployment);
    if (vars['target.url']) env.HD_URL = vars['target.url'];
    for (const [k, v] of Object.entries(this.config.vars))
      env[`HD_VAR_${k.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`] = v;
    return {
      name: this.name,
      vars,
      env,
      release,
      exec: (command, o) =>
        runLocal(command, {
          cwd: ctx.config.dir,
          env: { ...ctx.env, ...env },
          timeoutMs: o.timeoutMs,
          signal: o.signal,
          redact: (t) => ctx.redactor.redact(t),
          groups: this.groups,
        }),
    };
  }

  healthSubject(stage: string, version?: string | null): HealthSubject {
    if (version === undefined) {
      const id = this.live?.id ?? this.candidate?.id;
      return this.subjectFor(stage, id ? { id, url: this.urls.get(id) } : undefined, this.ctx.release.id);
    }
    const id = version ?? undefined;
    return this.subjectFor(
      stage,
      id ? { id, url: this.urls.get(id) } : undefined,
      id ? this.releases.get(id) : undefined,
    );
  }

  async rollback(opts: RollbackOptions): Promise<RollbackOutcome> {
    const t0 = Date.now();
    if (opts.to === null)
      throw new DeployError(
        'precondition',
        `${this.name}: nothing to roll back to: project ${this.config.project} had no production deployment before this run, and a Vercel rollback needs an earlier production deployment; take the project offline or redeploy by hand`,
        { host: this.name, phase: opts.stage },
      );
    const to = opts.to;
    // A rollback runs also when the run was cancelled: Vercel switches by itself once asked, so the request gets a
    // signal of its own, and a cancelled run waits only handOverWaitMs for the switch.
    const waitMs = opts.handOverWaitMs ?? this.timings.promoteTimeoutMs + this.timings.domainsTimeoutMs;
    const b = boundedSignal(waitMs + 30_000);
    const step = (ok: boolean, output: string, name = 'rollback'): StepReport => ({
      name,
      command:
        name === 'rollback'
          ? `POST /v1/projects/${this.project?.id ?? this.config.project}/rollback/${to}`
          : undefined,
      exitCode: ok ? 0 : null,
      durationMs: Date.now() - t0,
      ok,
      output: this.ctx.redactor.redact(output),
    });
    try {
      const p = await this.readProject('rollback', b.signal);
      const actions: string[] = [];
      if (p.production?.id !== to) {
        await this.api.rollback(
          p.id,
          to,
          `homelab-deploy: back from release ${this.ctx.release.id}${this.ctx.run.id ? ` (run ${this.ctx.run.id})` : ''}`,
          this.call('rollback', b.signal),
        );
        actions.push(
          `instant rollback of Vercel project ${p.name} to ${to} (from ${p.production?.id ?? 'none'})`,
        );
        if (opts.handOverWaitMs !== undefined) {
          const hand = boundedSignal(opts.handOverWaitMs);
          try {
            await this.waitProduction(to, 'rollback', hand.signal);
          } catch {
            const s = step(true, `rollback to ${to} requested; Vercel completes the switch on its side`);
            return { ok: true, steps: [s], pending: true, handedOver: true, actions };
          } finally {
            hand.dispose();
          }
        } else await this.waitProduction(to, 'rollback', b.signal);
      }
      const steps = [step(true, `production of ${p.name} is ${to}`)];
      const t1 = Date.now();
      const domains = await this.waitDomains(to, b.signal);
      if (domains)
        steps.push({ name: 'domains', exitCode: 0, durationMs: Date.now() - t1, ok: true, output: domains });
      await this.store.appendAudit(this.name, {
        time: new Date().toISOString(),
        action: 'rollback',
        host: this.name,
        release: this.ctx.release.id,
        to,
        runId: this.ctx.run.id,
      });
      this.live = undefined;
      return { ok: true, steps, actions };
    } catch (e) {
      const err = toDeployError(e);
      const s = step(false, `${err.errorClass}: ${err.message}`);
      return { ok: false, steps: [s], failed: s };
    } finally {
      b.dispose();
    }
  }

  async settle(opts: {
    stage: string;
    previous: string | null;
    unchanged: boolean;
    durationMs?: number;
  }): Promise<void> {
    await this.appendLog({
      event: 'deploy',
      stage: opts.stage,
      version: this.live?.id ?? this.project?.production?.id ?? null,
      previous: opts.previous,
      unchanged: opts.unchanged,
      durationMs: opts.durationMs,
    });
    await this.store.setNeedsAttention(this.name, null);
  }

  async markNeedsAttention(record: Record<string, unknown>): Promise<void> {
    await this.store.setNeedsAttention(this.name, record);
  }

  async appendLog(entry: Record<string, unknown>): Promise<void> {
    const { ctx } = this;
    await this.store.appendReleaseLog(this.name, {
      time: new Date().toISOString(),
      target: this.name,
      release: ctx.release.id,
      commit: ctx.release.commit,
      runId: ctx.run.id,
      runUrl: ctx.run.url,
      actor: ctx.run.actor,
      ...entry,
    });
  }

  async readCurrent(opts: { timeoutMs?: number } = {}): Promise<{ version: string | null; onNew: boolean }> {
    const b = opts.timeoutMs !== undefined ? boundedSignal(opts.timeoutMs, this.ctx.signal) : undefined;
    try {
      const prod = (await this.readProject('read current', b?.signal)).production;
      return { version: prod?.id ?? null, onNew: prod?.meta[META.release] === this.ctx.release.id };
    } finally {
      b?.dispose();
    }
  }

  async kill(): Promise<void> {
    this.kills++;
    const b = boundedSignal(15_000);
    try {
      await Promise.all([
        ...[...this.building].map((id) =>
          this.api.cancelDeployment(id, this.call('cancel build', b.signal)).catch(() => undefined),
        ),
        this.groups.killAll(),
      ]);
    } finally {
      b.dispose();
    }
  }

  async close(): Promise<void> {
    /* HTTP connections are pooled by the runtime and shared by every target */
  }

  async status(): Promise<TargetStatus> {
    const staleAfterMs = this.ctx.config.lock.staleAfterMs;
    const [lock, log, points, attention] = await Promise.all([
      this.store.lockState(this.name, staleAfterMs),
      this.store.readReleaseLog(this.name),
      this.store.listRollbackPoints(this.name, 20),
      this.store.getNeedsAttention(this.name),
    ]);
    const recent = log
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return { unreadable: l.slice(0, 200) };
        }
      });
    const st: TargetStatus = {
      host: this.name,
      kind: 'vercel',
      reachable: false,
      lock,
      recent: recent.slice(-10),
      rollbackPoints: points,
      needsAttention: attention,
    };
    try {
      const p = await this.readProject('status');
      const prod = p.production;
      st.reachable = true;
      st.current = prod?.id ?? null;
      st.empty = !prod;
      st.previous =
        prod?.meta[META.previous] ||
        points.find((x) => x.release === prod?.meta[META.release])?.previous ||
        null;
      const seen = new Set<string>([st.current ?? '']);
      st.releases = recent
        .map((e) => e.version)
        .filter((v): v is string => typeof v === 'string' && !!v)
        .reverse()
        .filter((v) => !seen.has(v) && (seen.add(v), true));
      st.extra = {
        project: p.id,
        projectName: p.name,
        productionUrl: prod?.url ? `https://${prod.url}` : null,
        productionRelease: prod?.meta[META.release] ?? null,
        domains: this.config.domains,
        lastAliasRequest: p.lastAliasRequest,
      };
    } catch (e) {
      st.error = this.ctx.redactor.redact(toDeployError(e).message);
    }
    return st;
  }

  releaseLockAsOperator(opts: { operator: string; force: boolean }): Promise<OperatorLockRelease> {
    return this.store.releaseAsOperator(this.name, {
      ...opts,
      staleAfterMs: this.ctx.config.lock.staleAfterMs,
    });
  }

  readReleaseLog(): Promise<string> {
    return this.store.readReleaseLog(this.name);
  }
}

export function createVercelTarget(
  ctx: RunContext,
  config: VercelTargetConfig,
  shared: VercelTargetShared,
): Target {
  return new VercelTarget(ctx, config, shared);
}
