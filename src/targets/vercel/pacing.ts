import { DeployError } from '../../errors';
import { formatDuration, sleep } from '../../util/duration';
import { Semaphore } from '../../util/concurrency';
import { QUOTA, type QuotaInfo, type VercelOp } from './errors';

/**
 * Client-side pacing for every Vercel target of a run that shares one team and token: a limit on builds in flight,
 * a count of deployments created against the daily quota, and per-endpoint gates that hold requests back while
 * Vercel asked us to wait. One instance per team+token, so 1500 sites of one team share one budget.
 *
 * Plan limits (vercel.com/docs/limits): deployments created per day Hobby 100 / Pro 6000; concurrent builds
 * Hobby 1 / Pro 12; Enterprise is negotiated, so its limits must be configured. A build beyond the concurrency
 * limit is queued by Vercel rather than refused, but it then counts against the build time a site is given, so
 * builds are held back here instead.
 */

export type VercelPlan = 'hobby' | 'pro' | 'enterprise';

export interface VercelLimits {
  concurrentBuilds: number;
  deploymentsPerDay: number;
}

export const PLAN_LIMITS: Record<Exclude<VercelPlan, 'enterprise'>, VercelLimits> = {
  hobby: { concurrentBuilds: 1, deploymentsPerDay: 100 },
  pro: { concurrentBuilds: 12, deploymentsPerDay: 6000 },
};

export interface VercelPacingSettings {
  plan: VercelPlan;
  /** Overrides the plan's value (a team with extra concurrent builds bought, a stricter self-imposed limit). */
  concurrentBuilds?: number;
  deploymentsPerDay?: number;
  /** The longest one request may spend waiting out rate limits before the run stops with a clear error. */
  maxRateLimitWaitMs: number;
}

export const DEFAULT_MAX_RATE_LIMIT_WAIT_MS = 5 * 60_000;
const WAIT_MARGIN_MS = 20;

/** The limits a plan and its overrides give; enterprise has no documented values, so both must be set. */
export function resolveLimits(s: {
  plan: VercelPlan;
  concurrentBuilds?: number;
  deploymentsPerDay?: number;
}): VercelLimits {
  if (s.plan === 'enterprise') {
    if (s.concurrentBuilds === undefined || s.deploymentsPerDay === undefined)
      throw new DeployError(
        'config',
        `vercel plan "enterprise" has no published limits: set concurrent_builds and deployments_per_day (got ${s.concurrentBuilds ?? 'none'} and ${s.deploymentsPerDay ?? 'none'})`,
      );
    return { concurrentBuilds: s.concurrentBuilds, deploymentsPerDay: s.deploymentsPerDay };
  }
  const base = PLAN_LIMITS[s.plan];
  if (!base)
    throw new DeployError(
      'config',
      `vercel plan: expected hobby, pro or enterprise, got ${JSON.stringify(s.plan)}`,
    );
  const limits = {
    concurrentBuilds: s.concurrentBuilds ?? base.concurrentBuilds,
    deploymentsPerDay: s.deploymentsPerDay ?? base.deploymentsPerDay,
  };
  for (const [k, v] of Object.entries(limits))
    if (!Number.isInteger(v) || v < 1)
      throw new DeployError('config', `vercel ${k}: expected a whole number of at least 1, got ${v}`);
  return limits;
}

/** Hours and minutes for waits of hours (a quota reset), seconds below a minute. */
export function formatWait(ms: number): string {
  if (ms < 60_000) return formatDuration(ms);
  const min = Math.round(ms / 60_000);
  return min < 60 ? `${min}m` : `${Math.floor(min / 60)}h${min % 60}m`;
}

function formatReset(resetAt: number | undefined, now: number): string {
  if (resetAt === undefined) return 'Vercel did not say when it resets (its window is a rolling 24 hours)';
  return `it resets at ${new Date(resetAt).toISOString()} (in ${formatWait(Math.max(0, resetAt - now))})`;
}

export interface PacingStats {
  created: number;
  limits: VercelLimits;
  buildsInFlight: number;
  peakBuilds: number;
  rateLimitWaits: number;
  rateLimitWaitedMs: number;
  quotaStopped: boolean;
}

export class VercelPacing {
  readonly limits: VercelLimits;
  private readonly builds: Semaphore;
  private readonly gates = new Map<VercelOp, number>();
  /** Deployments Vercel confirmed, and those counted against the quota (confirmed + requests in flight). */
  private created = 0;
  private reserved = 0;
  private peak = 0;
  private waits = 0;
  private waitedMs = 0;
  private exhausted?: DeployError;

  constructor(
    /** For messages: which team (and token variable) this budget belongs to. */
    readonly label: string,
    readonly settings: VercelPacingSettings,
    private readonly hooks: { log?: (message: string) => void; now?: () => number } = {},
  ) {
    this.limits = resolveLimits(settings);
    this.builds = new Semaphore(this.limits.concurrentBuilds);
  }

  private now(): number {
    return this.hooks.now ? this.hooks.now() : Date.now();
  }

  /**
   * Takes a build slot (waits while `concurrentBuilds` builds are in flight) and counts one deployment against the
   * daily quota. Refuses with a `quota` error, before anything is sent, once the quota stopped the run or the
   * configured daily limit would be passed. The returned function gives the slot back (when the build ended).
   */
  async startBuild(
    what: string,
    signal: AbortSignal,
  ): Promise<{ done: () => void; created: () => void; unreserve: () => void }> {
    this.refuseIfStopped(what);
    let release: () => void;
    try {
      release = await this.builds.acquire({ signal });
    } catch (e) {
      if (signal.aborted)
        throw new DeployError('cancelled', `${what}: cancelled while waiting for a build slot`);
      throw e;
    }
    try {
      this.refuseIfStopped(what);
      if (this.reserved >= this.limits.deploymentsPerDay)
        throw new DeployError(
          QUOTA,
          `${what}: not created, because it would pass the daily deployment limit of ${this.limits.deploymentsPerDay} configured for ${this.label} (plan ${this.settings.plan}); this run has created or is creating ${this.reserved}. Raise deployments_per_day if the plan allows more, or deploy the rest tomorrow`,
        );
    } catch (e) {
      release();
      throw e;
    }
    // Counted before the request, so builds in flight together cannot pass the limit between them.
    this.reserved++;
    this.peak = Math.max(this.peak, this.builds.inUse);
    let settled = false;
    return {
      done: release,
      created: () => {
        if (!settled) this.created++;
        settled = true;
      },
      // The create request was refused, so nothing counts against the quota.
      unreserve: () => {
        if (!settled) this.reserved--;
        settled = true;
      },
    };
  }

  private refuseIfStopped(what: string): void {
    if (this.exhausted)
      throw new DeployError(this.exhausted.errorClass, `${what}: not created. ${this.exhausted.message}`);
  }

  /**
   * Vercel answered with the daily quota: no target of this team creates another deployment in this run. Returns
   * the error that names the quota and when it resets.
   */
  stopForQuota(info: QuotaInfo, what: string): DeployError {
    const now = this.now();
    const total = info.total ?? this.limits.deploymentsPerDay;
    const err = new DeployError(
      QUOTA,
      `Vercel's daily deployment quota for ${this.label} is used up (${info.code}: ${total} deployments per day); ${formatReset(info.resetAt, now)}. This run created ${this.created} deployment(s) before Vercel refused ${what}; no further deployments are created. Wait for the reset or move to a plan with a larger quota`,
    );
    this.exhausted ??= err;
    return err;
  }

  get quotaStopped(): boolean {
    return this.exhausted !== undefined;
  }

  /** Waits while the endpoint's gate is closed, within what is left of the request's wait budget. */
  async beforeRequest(op: VercelOp, budget: WaitBudget, signal: AbortSignal, what: string): Promise<void> {
    const until = this.gates.get(op);
    if (until === undefined) return;
    const ms = until - this.now();
    if (ms <= 0) {
      this.gates.delete(op);
      return;
    }
    await this.wait(
      op,
      ms,
      budget,
      signal,
      what,
      'held back: the endpoint has no requests left until its reset',
    );
  }

  /** A successful answer said the endpoint is spent until `until`: hold back its next requests. */
  closeGate(op: VercelOp, until: number): void {
    if (until > this.now()) this.gates.set(op, Math.max(this.gates.get(op) ?? 0, until));
  }

  /**
   * A 429 asked us to wait `ms` before the next request to this endpoint: every request of the run to it waits
   * (the gate), and this one waits before trying again. Past the budget, the run stops with a `quota` error.
   */
  async rateLimited(
    op: VercelOp,
    ms: number,
    budget: WaitBudget,
    signal: AbortSignal,
    what: string,
  ): Promise<void> {
    this.closeGate(op, this.now() + ms);
    await this.wait(op, ms, budget, signal, what, 'rate-limited (429)');
  }

  private async wait(
    op: VercelOp,
    ms: number,
    budget: WaitBudget,
    signal: AbortSignal,
    what: string,
    why: string,
  ): Promise<void> {
    if (budget.waitedMs + ms > this.settings.maxRateLimitWaitMs)
      throw new DeployError(
        QUOTA,
        `${what}: Vercel's rate limit for ${op} asks for a wait of ${formatWait(ms)}, which would pass the wait budget of ${formatWait(this.settings.maxRateLimitWaitMs)} per request (waited ${formatDuration(budget.waitedMs)} already); stopped instead of retrying`,
      );
    this.waits++;
    // Timers may fire a millisecond early against the wall clock; the margin keeps the next request after the reset.
    ms += WAIT_MARGIN_MS;
    this.hooks.log?.(`${what}: ${why} on ${op}; waiting ${formatWait(ms)}`);
    const t0 = this.now();
    await sleep(ms, signal);
    if (signal.aborted)
      throw new DeployError('cancelled', `${what}: cancelled while waiting out a rate limit`);
    const spent = Math.max(ms, this.now() - t0);
    budget.waitedMs += spent;
    this.waitedMs += spent;
  }

  stats(): PacingStats {
    return {
      created: this.created,
      limits: this.limits,
      buildsInFlight: this.builds.inUse,
      peakBuilds: this.peak,
      rateLimitWaits: this.waits,
      rateLimitWaitedMs: this.waitedMs,
      quotaStopped: this.quotaStopped,
    };
  }
}

/** What one request has waited so far; a fresh one per request. */
export interface WaitBudget {
  waitedMs: number;
}

export interface EstimateInput {
  /** How many targets, or each target's promote mode (a preview promotion builds twice: preview, then production). */
  targets: number | readonly { promote: 'production' | 'preview' }[];
  /** Targets deployed at once (the stage's `parallel`). */
  concurrency: number;
  plan: VercelPlan;
  /** Overrides of the plan's limits, as configured. */
  limits?: Partial<VercelLimits>;
  /** How long one deployment takes from creation to READY plus its checks, in seconds. */
  perDeploySeconds: number;
  /** Deployments already created today, when known. */
  usedToday?: number;
}

export interface Estimate {
  targets: number;
  deployments: number;
  deploymentsPerDay: number;
  /** deployments / deploymentsPerDay (1 = the whole day's quota). */
  quotaShare: number;
  /** Builds that run at once: the smaller of the concurrency and the plan's concurrent builds. */
  parallelBuilds: number;
  expectedWallSeconds: number;
  /** False when the run would pass the daily quota (counting usedToday). */
  fitsQuota: boolean;
  notes: string[];
}

/**
 * What a run will cost before it starts (for `plan`): deployments it creates, their share of the daily quota, and
 * the wall time at the configured concurrency, with builds limited by the plan. No network.
 */
export function estimate(input: EstimateInput): Estimate {
  const limits = resolveLimits({ plan: input.plan, ...input.limits });
  const modes =
    typeof input.targets === 'number'
      ? Array.from({ length: input.targets }, () => ({ promote: 'production' as const }))
      : input.targets;
  const deployments = modes.reduce((n, t) => n + (t.promote === 'preview' ? 2 : 1), 0);
  const parallelBuilds = Math.max(
    1,
    Math.min(Math.max(1, Math.floor(input.concurrency)), limits.concurrentBuilds),
  );
  const expectedWallSeconds = Math.ceil(deployments / parallelBuilds) * Math.max(0, input.perDeploySeconds);
  const used = input.usedToday ?? 0;
  const fitsQuota = used + deployments <= limits.deploymentsPerDay;
  const notes: string[] = [];
  if (input.concurrency > limits.concurrentBuilds)
    notes.push(
      `concurrency ${input.concurrency} is above the plan's ${limits.concurrentBuilds} concurrent builds: builds wait for a slot`,
    );
  if (!fitsQuota)
    notes.push(
      `${deployments} deployments${used ? ` (+${used} already today)` : ''} exceed the daily quota of ${limits.deploymentsPerDay}: the run stops when Vercel refuses, after about ${Math.max(0, limits.deploymentsPerDay - used)} deployments`,
    );
  if (modes.some((t) => t.promote === 'preview'))
    notes.push(
      'targets with promote: preview create two deployments each (the preview, then its production build)',
    );
  return {
    targets: modes.length,
    deployments,
    deploymentsPerDay: limits.deploymentsPerDay,
    quotaShare: deployments / limits.deploymentsPerDay,
    parallelBuilds,
    expectedWallSeconds,
    fitsQuota,
    notes,
  };
}
