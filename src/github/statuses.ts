import type { Report } from '../report/types';
import { githubRequest, type ApiOptions } from './api';

export interface StatusReporterOptions {
  token?: string;
  repository: string; // owner/repo
  sha: string;
  runUrl?: string;
  environment?: string;
  environmentUrl?: string;
  useDeployments: boolean;
  apiUrl?: string;
  warn: (msg: string) => void;
  api?: Partial<ApiOptions>;
}

type State = 'success' | 'failure' | 'error';

/** GitHub cuts descriptions at 140 characters; cut on a character boundary with an ellipsis. */
export function fitDescription(text: string, max = 140): string {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  return chars.length <= max ? chars.join('') : chars.slice(0, max - 1).join('') + '…';
}

/**
 * Reports each phase as a commit status (or, for jobs without an `environment:`, a deployment with statuses).
 * Never throws and never changes the deploy; without the needed permission it warns once and stops calling.
 */
export function createStatusReporter(o: StatusReporterOptions) {
  let disabled = !o.token;
  let warned = false;
  let deploymentId: number | undefined;
  const api: ApiOptions = { token: o.token ?? '', baseUrl: o.apiUrl, ...o.api };
  const scope = o.environment || 'deploy';
  const permission = o.useDeployments ? 'deployments: write' : 'statuses: write';

  const call = async (method: string, path: string, body: unknown) => {
    if (disabled) return undefined;
    const r = await githubRequest(method, path, body, api);
    if (r.ok) return r;
    if (r.status === 403 || r.status === 404 || r.status === 401) {
      disabled = true;
      if (!warned) {
        warned = true;
        o.warn(
          `homelab-deploy cannot write ${o.useDeployments ? 'deployment' : 'commit'} statuses (HTTP ${r.status}: ${r.error ?? ''}). Give the job \`permissions: ${permission}\` to see per-stage results on commits and PRs. The deploy itself is not affected.`,
        );
      }
    } else if (!warned) {
      warned = true;
      o.warn(
        `GitHub status update failed after retries (HTTP ${r.status || 'no answer'}: ${r.error ?? ''}); the deploy result is unaffected.`,
      );
    }
    return undefined;
  };

  const commitStatus = (phase: string, state: State | 'pending', description: string) =>
    call('POST', `/repos/${o.repository}/statuses/${o.sha}`, {
      state,
      context: `homelab-deploy/${scope}/${phase}`,
      description: fitDescription(description),
      target_url: o.runUrl,
    });

  const deploymentStatus = async (
    state: 'in_progress' | 'success' | 'failure' | 'error',
    description: string,
  ) => {
    if (deploymentId === undefined) {
      const created = await call('POST', `/repos/${o.repository}/deployments`, {
        ref: o.sha,
        environment: scope,
        auto_merge: false,
        required_contexts: [],
        description: fitDescription(`homelab-deploy ${o.sha.slice(0, 12)}`),
        production_environment: /prod/i.test(scope),
        transient_environment: false,
      });
      const id = (created?.body as { id?: number } | undefined)?.id;
      if (typeof id !== 'number') return;
      deploymentId = id;
    }
    await call('POST', `/repos/${o.repository}/deployments/${deploymentId}/statuses`, {
      state,
      description: fitDescription(description),
      log_url: o.runUrl,
      environment_url: o.environmentUrl,
      auto_inactive: true,
    });
  };

  return {
    async phaseStarted(phase: string): Promise<void> {
      if (o.useDeployments) {
        if (phase === 'preflight') await deploymentStatus('in_progress', `deploying ${o.sha.slice(0, 12)}`);
      } else await commitStatus(phase, 'pending', `${phase} running`);
    },
    async phaseFinished(phase: string, state: State, description: string): Promise<void> {
      if (!o.useDeployments) await commitStatus(phase, state, description);
    },
    async finish(report: Report): Promise<void> {
      const ok = report.status === 'success' || report.status === 'partial_success';
      const description = `${report.status}: ${report.systemsDeployed.length}/${report.hosts.filter((h) => h.stage).length} hosts on ${report.release.id}${report.error ? ` — ${report.error.class}: ${report.error.message}` : ''}`;
      if (o.useDeployments) await deploymentStatus(ok ? 'success' : 'failure', description);
      else await commitStatus('result', ok ? 'success' : 'failure', description);
    },
  };
}
