import type { Report } from '../report/types';
import { attempt, githubClient, type ApiOptions, type ApiResult, type GitHubClient } from './api';

/** Where per-phase results go: commit statuses (PR checks) or one deployment with its statuses. */
export type StatusMode = 'commit-status' | 'deployments';

export interface StatusReporterOptions {
  token: string;
  repository: string; // owner/repo
  sha: string;
  runUrl?: string;
  environment?: string;
  environmentUrl?: string;
  mode: StatusMode;
  warn: (msg: string) => void;
  /** Told whenever the set of statuses GitHub may show as still running changes, so the post step can close them. */
  onOpenChange?: (open: OpenStatuses) => void;
  api?: Partial<ApiOptions>;
}

/** What a killed or cancelled main step leaves pending on GitHub; saved for the post step. */
export interface OpenStatuses {
  mode: StatusMode;
  sha: string;
  scope: string;
  contexts: string[]; // phase names (and "result") whose commit status is, or may be, still pending
  deploymentId?: number; // a deployment whose last status is, or may be, in_progress
}

type State = 'success' | 'failure' | 'error';

const RESULT = 'result';

/** GitHub cuts descriptions at 140 characters; cut on a character boundary with an ellipsis. */
export function fitDescription(text: string, max = 140): string {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  return chars.length <= max ? chars.join('') : chars.slice(0, max - 1).join('') + '…';
}

/** Calls in a row that failed despite their retries before the client stops calling: GitHub is down. */
const GIVE_UP_AFTER = 3;

/**
 * Tries per status call: a status is worth a few seconds at the end of a job, not the minute a full retry budget
 * would cost when GitHub is down (1 s, then 4 s between tries).
 */
const STATUS_ATTEMPTS = 3;

/**
 * One Octokit per reporter: never throws, warns once, and stops calling after 401/403/404 (a missing permission
 * does not fix itself within a run) or after GIVE_UP_AFTER failed calls in a row (each costs seconds of retries
 * at the end of the job, for statuses nobody will see). A 403 or 429 for a rate limit is not a missing permission:
 * it was retried as GitHub asks, and counts as a failed call.
 */
function client(o: {
  token: string;
  mode: StatusMode;
  warn: (msg: string) => void;
  api?: Partial<ApiOptions>;
  onDisabled?: () => void;
}) {
  let disabled = !o.token;
  let warned = false;
  let failedInARow = 0;
  let gh: GitHubClient | undefined;
  // Status calls run side by side (one queue per context): once the client gives up, the ones still retrying stop.
  const stop = new AbortController();
  const permission = o.mode === 'deployments' ? 'deployments: write' : 'statuses: write';
  return {
    get disabled() {
      return disabled;
    },
    async call<R extends { status: number; data: unknown }>(
      request: (gh: GitHubClient) => Promise<R>,
    ): Promise<ApiResult<R['data']> | undefined> {
      if (disabled) return undefined;
      gh ??= githubClient({ attempts: STATUS_ATTEMPTS, ...o.api, token: o.token, signal: stop.signal });
      const client = gh;
      const r = await attempt(() => request(client));
      if (r.ok) {
        failedInARow = 0;
        return r;
      }
      if (disabled) return undefined; // stopped while this call was retrying
      if (!r.rateLimited && (r.status === 403 || r.status === 404 || r.status === 401)) {
        disabled = true;
        stop.abort();
        o.onDisabled?.();
        if (!warned) {
          warned = true;
          o.warn(
            `homelab-deploy cannot write ${o.mode === 'deployments' ? 'deployment' : 'commit'} statuses (HTTP ${r.status}: ${r.error ?? ''}). Give the job \`permissions: ${permission}\` to see per-stage results on commits and PRs. The deploy itself is not affected.`,
          );
        }
      } else {
        if (!warned) {
          warned = true;
          o.warn(
            r.rateLimited
              ? `GitHub rate-limited the status updates (HTTP ${r.status}: ${r.error ?? ''}); they were retried after the pauses GitHub asked for (up to 30 s), then given up. The deploy result is unaffected.`
              : `GitHub status update failed after retries (HTTP ${r.status || 'no answer'}: ${r.error ?? ''}); the deploy result is unaffected.`,
          );
        }
        if (++failedInARow >= GIVE_UP_AFTER) {
          disabled = true;
          stop.abort();
        }
      }
      return undefined;
    },
  };
}

/** owner/repo as the REST methods take it. */
function repoOf(repository: string): { owner: string; repo: string } {
  const [owner = '', repo = ''] = repository.split('/');
  return { owner, repo };
}

const contextName = (scope: string, phase: string) => `homelab-deploy/${scope}/${phase}`;

/**
 * Reports each phase as a commit status, or the whole run as one deployment with statuses. Never throws and never
 * changes the deploy. Calls for the same context are sent one after another, each after the previous one's
 * retries: a retried `pending` that landed after its `success` would leave the check spinning forever, while the
 * deploy must not wait for GitHub, so callers fire and forget and `finish` drains the queues.
 */
export function createStatusReporter(o: StatusReporterOptions) {
  const scope = o.environment || 'deploy';
  const repo = repoOf(o.repository);
  const open = new Set<string>();
  let deploymentId: number | undefined;
  let deploymentOpen = false;
  const queues = new Map<string, Promise<void>>();

  const notify = () =>
    o.onOpenChange?.({
      mode: o.mode,
      sha: o.sha,
      scope,
      contexts: [...open],
      deploymentId: deploymentOpen ? deploymentId : undefined,
    });
  const api = client({
    token: o.token,
    mode: o.mode,
    warn: o.warn,
    api: o.api,
    // Without permission nothing was created, so nothing is left for the post step to close.
    onDisabled: () => {
      open.clear();
      deploymentOpen = false;
      notify();
    },
  });

  const enqueue = (key: string, task: () => Promise<void>): Promise<void> => {
    // Callers do not await (the deploy must not wait for GitHub), so a rejection here would be unhandled.
    const next = (queues.get(key) ?? Promise.resolve())
      .then(task)
      .catch((err: unknown) => o.warn(`GitHub status update failed: ${(err as Error).message}`));
    queues.set(key, next);
    return next;
  };
  const drain = async () => {
    // A task may enqueue more work (finish does), so wait until the queues stop changing.
    for (;;) {
      const all = [...queues.values()];
      await Promise.allSettled(all);
      if ([...queues.values()].every((q, i) => q === all[i]) && queues.size === all.length) return;
    }
  };

  // The final state each phase should show, so one lost to an outage can be sent again at the end.
  const intended = new Map<string, { state: State; description: string }>();
  const commitStatus = (phase: string, state: State | 'pending', description: string) => {
    if (api.disabled) return Promise.resolve();
    if (state !== 'pending') intended.set(phase, { state, description });
    if (state === 'pending') {
      open.add(phase);
      // The result is owed from the first status on; a killed run gets an `error` result from the post step.
      open.add(RESULT);
      notify();
    }
    return enqueue(phase, async () => {
      const r = await api.call((gh) =>
        gh.rest.repos.createCommitStatus({
          ...repo,
          sha: o.sha,
          state,
          context: contextName(scope, phase),
          description: fitDescription(description),
          target_url: o.runUrl,
        }),
      );
      // Only a delivered final state closes a context; a lost one leaves it for finish/post to close.
      if (r && state !== 'pending' && open.delete(phase)) notify();
    });
  };

  const deploymentStatus = (state: 'in_progress' | State, description: string) => {
    if (api.disabled) return Promise.resolve();
    return enqueue('deployment', async () => {
      if (deploymentId === undefined) {
        const created = await api.call((gh) =>
          gh.rest.repos.createDeployment({
            ...repo,
            ref: o.sha,
            environment: scope,
            auto_merge: false,
            required_contexts: [],
            description: fitDescription(`homelab-deploy ${o.sha.slice(0, 12)}`),
            production_environment: /prod/i.test(scope),
            transient_environment: false,
          }),
        );
        const id = (created?.body as { id?: number } | undefined)?.id;
        if (typeof id !== 'number') return;
        deploymentId = id;
        // Open from creation on: a deployment without a final status shows as pending on GitHub.
        deploymentOpen = true;
        notify();
      }
      const id = deploymentId;
      const r = await api.call((gh) =>
        gh.rest.repos.createDeploymentStatus({
          ...repo,
          deployment_id: id,
          state,
          description: fitDescription(description),
          log_url: o.runUrl,
          environment_url: o.environmentUrl,
          auto_inactive: true,
        }),
      );
      if (r && state !== 'in_progress' && deploymentOpen) {
        deploymentOpen = false;
        notify();
      }
    });
  };

  let started = false;
  return {
    phaseStarted(phase: string): Promise<void> {
      if (o.mode === 'deployments') {
        // One deployment per run: it opens with whichever phase comes first.
        if (started) return Promise.resolve();
        started = true;
        return deploymentStatus('in_progress', `deploying ${o.sha.slice(0, 12)}`);
      }
      return commitStatus(phase, 'pending', `${phase} running`);
    },
    phaseFinished(phase: string, state: State, description: string): Promise<void> {
      if (o.mode === 'deployments') return Promise.resolve();
      return commitStatus(phase, state, description);
    },
    /** Sends the result, closes what is still open, and waits until every queued call has been answered. */
    async finish(report: Report): Promise<void> {
      const ok = report.status === 'success' || report.status === 'partial_success';
      const description = `${report.status}: ${report.systemsDeployed.length}/${report.hosts.filter((h) => h.stage).length} hosts on ${report.release.id}${report.error ? ` — ${report.error.class}: ${report.error.message}` : ''}`;
      if (o.mode === 'deployments') {
        // A run that never started a phase (e.g. a config error) has no deployment to finish.
        if (started) await deploymentStatus(ok ? 'success' : 'failure', description);
      } else {
        await drain();
        await Promise.all(
          [...open]
            .filter((c) => c !== RESULT)
            .map((phase) => {
              const last = intended.get(phase);
              return last
                ? commitStatus(phase, last.state, last.description)
                : commitStatus(phase, 'error', `${phase} did not finish (${report.status})`);
            }),
        );
        await commitStatus(RESULT, ok ? 'success' : 'failure', description);
      }
      await drain();
    },
    /** Waits for every queued call; for tests and shutdown paths that do not send a result. */
    flush: drain,
  };
}

/**
 * Post step: marks what a killed or cancelled main step left running as `error`, so no check spins forever on
 * the commit or PR. Never throws.
 */
export async function closeAbandoned(
  left: OpenStatuses,
  o: {
    token: string;
    repository: string;
    runUrl?: string;
    warn: (msg: string) => void;
    api?: Partial<ApiOptions>;
  },
): Promise<void> {
  const api = client({ token: o.token, mode: left.mode, warn: o.warn, api: o.api });
  const repo = repoOf(o.repository);
  const description = 'cancelled: the job stopped before this finished';
  if (left.mode === 'deployments') {
    if (left.deploymentId === undefined) return;
    const id = left.deploymentId;
    await api.call((gh) =>
      gh.rest.repos.createDeploymentStatus({
        ...repo,
        deployment_id: id,
        state: 'error',
        description,
        log_url: o.runUrl,
      }),
    );
    return;
  }
  // Phases first, the result last, so the result is the final word as it is in a finished run.
  const order = [...left.contexts.filter((c) => c !== RESULT), ...left.contexts.filter((c) => c === RESULT)];
  for (const phase of order) {
    await api.call((gh) =>
      gh.rest.repos.createCommitStatus({
        ...repo,
        sha: left.sha,
        state: 'error',
        context: contextName(left.scope, phase),
        description: phase === RESULT ? 'cancelled: the deploy did not finish' : description,
        target_url: o.runUrl,
      }),
    );
  }
}
