import type { HostStatus, LockReleaseResult, LockState } from '../targets/inspect';
import { describeHolder } from '../targets/ssh/owner';

/** Whole seconds as an operator reads them: 42s, 3m05s, 2h10m. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const ago = (seconds: number) => `${formatAge(seconds)} ago`;

/** "held by alice (run ..., commit ..., phase ...) since ..., heartbeat 3s ago: live (stale after 15m00s)". */
export function renderLock(lock: LockState | undefined): string {
  if (!lock || !lock.held) return 'free';
  const verdict = lock.stale ? 'STALE' : 'live';
  return `held by ${describeHolder(lock.owner)}, heartbeat ${ago(lock.heartbeatAgeSeconds)}: ${verdict} (stale after ${formatAge(lock.staleAfterSeconds)})`;
}

export function renderLockStatus(list: HostStatus[]): string {
  return list
    .map((s) => `${s.host}: ${s.reachable ? renderLock(s.lock) : `unreachable: ${s.error}`}`)
    .join('\n');
}

const str = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : String(v));

function renderLogLine(l: Record<string, unknown>): string {
  const parts = [
    str(l.time) ?? '?',
    str(l.event) ?? '?',
    str(l.release) ?? '?',
    str(l.result) ?? '?',
    l.stage ? `stage ${str(l.stage)}` : undefined,
    l.event === 'rollback' ? `to ${str(l.to) ?? '(none)'}` : undefined,
    l.error ? `[${str(l.error)}]` : undefined,
    l.actor ? `by ${str(l.actor)}` : undefined,
    str(l.runUrl),
  ];
  return parts.filter(Boolean).join(' ');
}

/** "⚠ NEEDS A HUMAN: rollback-failed at ...: release v2, rollback to v1 failed: ... (run ...)". */
export function renderAttention(record: Record<string, unknown>): string {
  const parts = [
    `${str(record.reason) ?? 'needs attention'}${record.time ? ` at ${str(record.time)}` : ''}`,
    record.release ? `release ${str(record.release)}` : undefined,
    'rollbackTo' in record ? `rollback to ${str(record.rollbackTo) ?? '(none)'} failed` : undefined,
    record.error ? str(record.error) : undefined,
  ].filter(Boolean);
  return `⚠ NEEDS A HUMAN: ${parts.join(': ')}${record.runUrl ? ` (run ${str(record.runUrl)})` : ''}`;
}

export function renderStatus(list: HostStatus[]): string {
  return list
    .map((s) => {
      if (!s.reachable) return `${s.host}: unreachable: ${s.error}`;
      if (s.empty) return `${s.host}: nothing deployed yet (no deploy path); lock: free`;
      const out = [`${s.host}: current ${s.current ?? '(none)'}, previous ${s.previous ?? '(none)'}`];
      if (s.needsAttention) out.push(`    ${renderAttention(s.needsAttention)}`);
      out.push(`    lock: ${renderLock(s.lock)}`);
      const recent = (s.recent ?? []).slice(-5);
      out.push(recent.length ? '    last results:' : '    last results: (release log empty)');
      for (const l of recent) out.push(`      ${renderLogLine(l)}`);
      const points = (s.rollbackPoints ?? []).slice(0, 5);
      out.push(points.length ? '    rollback points:' : '    rollback points: (none recorded)');
      for (const p of points)
        out.push(
          `      ${p.release} -> ${p.previous ?? '(none: stack stopped)'}${p.infraSnapshot ? `, infra snapshot ${p.infraSnapshot}` : ''} (recorded ${p.recordedAt})`,
        );
      if (s.releases?.length) out.push(`    releases on disk: ${s.releases.join(', ')}`);
      if (s.snapshots?.length)
        out.push(`    command snapshots kept: ${s.snapshots.map((x) => x.name).join(', ')}`);
      return out.join('\n');
    })
    .join('\n');
}

export function renderRelease(r: LockReleaseResult): string {
  const held = r.lock?.held ? r.lock : undefined;
  const who = held ? `held by ${describeHolder(held.owner)}, heartbeat ${ago(held.heartbeatAgeSeconds)}` : '';
  switch (r.outcome) {
    case 'free':
      return `${r.host}: no lock`;
    case 'released':
      return `${r.host}: lock released (was ${who}, ${held?.stale ? 'stale' : 'LIVE: forced'}); recorded in the host's audit log`;
    case 'refused-live':
      return `${r.host}: refused: the lock is ${who}, younger than lock.stale_after (${formatAge(held?.staleAfterSeconds ?? 0)}), so that run is probably still deploying; check it, then pass --force to remove it anyway`;
    case 'changed':
      return `${r.host}: not released: the lock changed while we looked (${who || 'new owner'}); look again with \`lock status\``;
    case 'error':
      return `${r.host}: error: ${r.error}`;
  }
}
