import { formatDuration } from '../util/duration';
import type { DeployRecord, Kpi } from './kpi';

const d = (ms?: number) => (ms === undefined ? '—' : formatDuration(ms));
const hostList = (hosts: string[]) =>
  hosts.length > 2 ? `${hosts[0]} +${hosts.length - 1}` : hosts.join(',');

export function renderHistory(records: DeployRecord[], kpis: Kpi[], limit = 20): string {
  const out: string[] = ['Recent deploys:'];
  const recent = [...records].sort((a, b) => Date.parse(b.time) - Date.parse(a.time)).slice(0, limit);
  for (const r of recent)
    out.push(
      `  ${r.time}  ${r.stage.padEnd(12)} ${hostList(r.hosts).padEnd(16)} ${r.release}  ${r.outcome.padEnd(11)} ${d(r.durationMs ?? r.rollbackMs)}`,
    );
  out.push(
    '',
    'KPIs per stage:',
    '  stage         deploys  success  avg deploy  avg rollback  MTTR      open incident',
  );
  for (const k of kpis) {
    out.push(
      `  ${k.stage.padEnd(13)} ${String(k.deploys).padStart(7)}  ${(k.successRate * 100).toFixed(1).padStart(6)}%  ${d(k.avgDeployMs).padStart(10)}  ${d(k.avgRollbackMs).padStart(12)}  ${d(k.mttrMs).padEnd(8)}  ${k.openIncidentSince ?? '—'}`,
    );
  }
  return out.join('\n');
}
