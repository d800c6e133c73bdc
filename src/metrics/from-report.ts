import type { HealthResult } from '../health/run';
import type { Kpi } from '../history/kpi';
import type { Report } from '../report/types';
import type { Family, Labels } from './exposition';
import { RUN_STATUSES as STATUSES } from './totals';

/**
 * Metrics of one run. The Pushgateway keeps the last value pushed for each group, so these are gauges describing
 * the latest run; totals over time come from the history KPIs (computed from the hosts' release logs).
 */
export function reportFamilies(r: Report, base: Labels): { run: Family[]; perHost: Map<string, Family[]> } {
  const run: Family[] = [
    {
      name: 'homelab_deploy_last_run_status',
      help: 'Status of the latest run (1 for the status it ended in).',
      type: 'gauge',
      samples: STATUSES.map((s) => ({ labels: { ...base, status: s }, value: r.status === s ? 1 : 0 })),
    },
    {
      name: 'homelab_deploy_last_run_timestamp_seconds',
      help: 'When the latest run finished.',
      type: 'gauge',
      samples: [{ labels: base, value: Math.round(Date.parse(r.finishedAt) / 1000) }],
    },
    {
      name: 'homelab_deploy_last_run_duration_seconds',
      help: 'Wall-clock duration of the latest run.',
      type: 'gauge',
      samples: [{ labels: base, value: r.durationSeconds }],
    },
    {
      name: 'homelab_deploy_last_run_hosts_deployed',
      help: 'Hosts on the new release after the latest run.',
      type: 'gauge',
      samples: [{ labels: base, value: r.systemsDeployed.length }],
    },
    {
      name: 'homelab_deploy_phase_duration_seconds',
      help: 'Duration of each phase of the latest run.',
      type: 'gauge',
      samples: r.phases.map((p) => ({
        labels: { ...base, phase: p.name, result: p.status },
        value: p.durationMs / 1000,
      })),
    },
  ];
  const perHost = new Map<string, Family[]>();
  for (const h of r.hosts) {
    const labels = { ...base, host: h.host, stage: h.stage ?? '' };
    const stageRep = r.phases.find((p) => p.name === h.stage)?.hosts.find((x) => x.host === h.host);
    const pre = r.phases.find((p) => p.kind === 'preflight')?.hosts.find((x) => x.host === h.host);
    // The same check runs in its stage and again in verify: the phase label keeps the series apart.
    const checks = r.phases.flatMap((p) =>
      p.hosts
        .filter((x) => x.host === h.host)
        .flatMap((x) => (x.health as HealthResult[]).map((c) => ({ ...c, phase: p.name }))),
    );
    const probed = checks.filter((c) => c.latency);
    const fams: Family[] = [
      {
        name: 'homelab_deploy_host_on_release',
        help: '1 if the host ended the latest run on its new release.',
        type: 'gauge',
        samples: [{ labels, value: r.systemsDeployed.includes(h.host) ? 1 : 0 }],
      },
      {
        name: 'homelab_deploy_host_duration_seconds',
        help: 'Deploy duration of the host in its stage (all attempts).',
        type: 'gauge',
        samples: stageRep ? [{ labels, value: stageRep.durationMs / 1000 }] : [],
      },
      {
        name: 'homelab_deploy_host_retries',
        help: 'Extra attempts the host needed in the latest run.',
        type: 'gauge',
        samples: stageRep ? [{ labels, value: Math.max(0, stageRep.attempts.length - 1) }] : [],
      },
      {
        name: 'homelab_deploy_host_rollback',
        help: 'Rollbacks of the host in the latest run, by result.',
        type: 'gauge',
        samples: h.rollback
          ? [{ labels: { ...labels, result: h.rollback.ok ? 'ok' : 'failed' }, value: 1 }]
          : [],
      },
      {
        name: 'homelab_deploy_host_rollback_duration_seconds',
        help: 'How long the rollback of the host took.',
        type: 'gauge',
        samples: h.rollback ? [{ labels, value: h.rollback.durationMs / 1000 }] : [],
      },
      {
        name: 'homelab_deploy_lock_wait_seconds',
        help: "Time pre-flight waited for another deploy's lock on the host.",
        type: 'gauge',
        samples:
          pre?.detail?.lockWaitMs !== undefined
            ? [{ labels, value: Number(pre.detail.lockWaitMs) / 1000 }]
            : [],
      },
      {
        name: 'homelab_deploy_health_check_duration_seconds',
        help: 'Time until the check passed or gave up.',
        type: 'gauge',
        samples: checks.map((c) => ({
          labels: { ...labels, check: c.check, phase: c.phase },
          value: c.durationMs / 1000,
        })),
      },
      {
        name: 'homelab_deploy_health_check_latency_seconds',
        help: 'Latency of the last probe of the check (one request or command, not the whole wait).',
        type: 'gauge',
        samples: probed.map((c) => ({
          labels: { ...labels, check: c.check, phase: c.phase },
          value: c.latency!.lastMs / 1000,
        })),
      },
      {
        name: 'homelab_deploy_health_check_latency_max_seconds',
        help: 'Latency of the slowest probe of the check.',
        type: 'gauge',
        samples: probed.map((c) => ({
          labels: { ...labels, check: c.check, phase: c.phase },
          value: c.latency!.maxMs / 1000,
        })),
      },
      {
        name: 'homelab_deploy_health_check_attempts',
        help: 'Probes the check needed.',
        type: 'gauge',
        samples: checks.map((c) => ({
          labels: { ...labels, check: c.check, phase: c.phase },
          value: c.attempts,
        })),
      },
      {
        name: 'homelab_deploy_health_check_failed',
        help: '1 if the check failed in the latest run.',
        type: 'gauge',
        samples: checks.map((c) => ({
          labels: { ...labels, check: c.check, phase: c.phase },
          value: c.ok ? 0 : 1,
        })),
      },
    ];
    perHost.set(h.host, fams);
  }
  return { run, perHost };
}

/**
 * KPI gauges per stage, from the deploy history (`homelab-deploy history --metrics`). `base` should carry the
 * same project and environment labels as the run metrics, so the dashboard's $environment selects both.
 */
export function kpiFamilies(kpis: Kpi[], base: Labels): Family[] {
  const per = (name: string, help: string, pick: (k: Kpi) => number | undefined): Family => ({
    name,
    help,
    type: 'gauge',
    samples: kpis.flatMap((k) => {
      const v = pick(k);
      return v === undefined ? [] : [{ labels: { ...base, stage: k.stage }, value: v }];
    }),
  });
  return [
    per('homelab_deploy_deploys', 'Deploys in the history window.', (k) => k.deploys),
    per(
      'homelab_deploy_deploys_failed',
      'Deploys that failed or were rolled back.',
      (k) => k.deploys - k.succeeded,
    ),
    per('homelab_deploy_success_ratio', 'Share of deploys that succeeded.', (k) => k.successRate),
    per('homelab_deploy_deploy_seconds_avg', 'Average duration of successful deploys.', (k) =>
      k.avgDeployMs === undefined ? undefined : k.avgDeployMs / 1000,
    ),
    per('homelab_deploy_rollback_seconds_avg', 'Average duration of rollbacks.', (k) =>
      k.avgRollbackMs === undefined ? undefined : k.avgRollbackMs / 1000,
    ),
    per('homelab_deploy_mttr_seconds', 'Mean time from a failed deploy to the next successful one.', (k) =>
      k.mttrMs === undefined ? undefined : k.mttrMs / 1000,
    ),
  ];
}
