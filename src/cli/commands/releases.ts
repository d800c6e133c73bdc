import { prepare } from '../../plan/prepare';
import type { HostStatus } from '../../targets/inspect';
import { Redactor } from '../../secrets/redact';
import { checkTargets, selectedNames } from '../checks';
import type { Command } from '../command';
import { loadInspect } from '../lazy';

/** What `releases` says about one target; the JSON form of the command. */
export interface TargetReleases {
  host: string;
  kind: HostStatus['kind'];
  reachable: boolean;
  error?: string;
  current: string | null;
  /** Where `rollback --to previous` goes: the current release's rollback point. */
  previous: string | null;
  /** Versions a rollback can return to, newest first. */
  releases: string[];
  rollbackPoints: { release: string; previous: string | null; infraSnapshot?: string; recordedAt: string }[];
}

export function releasesOf(s: HostStatus): TargetReleases {
  return {
    host: s.host,
    kind: s.kind,
    reachable: s.reachable,
    error: s.error,
    current: s.current ?? null,
    previous: s.previous ?? null,
    releases: s.releases ?? [],
    rollbackPoints: (s.rollbackPoints ?? []).map((p) => ({
      release: p.release,
      previous: p.previous,
      infraSnapshot: p.infraSnapshot,
      recordedAt: p.recordedAt,
    })),
  };
}

export function renderReleases(list: TargetReleases[]): string {
  return list
    .map((r) => {
      if (!r.reachable) return `${r.host} (${r.kind}): unreachable: ${r.error}`;
      const back = r.previous ?? '(nothing: no rollback point recorded)';
      const others = r.releases.filter((v) => v !== r.current);
      return [
        `${r.host} (${r.kind}): current ${r.current ?? '(none)'}`,
        `    rollback --to previous: ${back}`,
        `    on record: ${r.releases.length ? r.releases.map((v) => (v === r.current ? `${v} (current)` : v)).join(', ') : '(none)'}`,
        ...(others.length ? [] : ['    nothing else to return to']),
      ].join('\n');
    })
    .join('\n');
}

export const releases: Command = {
  name: 'releases',
  summary:
    'per target: the current release, what `rollback --to previous` returns to, the releases on record',
  usage: '[--config FILE] [--targets h1,h2] [--json]',
  options: [
    { name: 'config' },
    { name: 'targets', help: 'only these targets (names, globs, label selectors)' },
    { name: 'json', help: 'print the releases per target as JSON' },
  ],
  examples: [
    'homelab-deploy releases --targets rtx1080',
    "homelab-deploy releases --targets 'site-*' --json",
  ],
  notes: ['Exit codes: 0, or 1 when a target could not be read (unreachable), 2 bad usage or config.'],
  async run({ values, configPath, env }, io) {
    const { config } = prepare(configPath, 'all');
    const bad = checkTargets(config, values.targets);
    if (bad) {
      io.err.write(bad + '\n');
      return 2;
    }
    const { hostStatuses } = await loadInspect();
    const list = (
      await hostStatuses(config, selectedNames(config, values.targets), { env, redactor: new Redactor() })
    ).map(releasesOf);
    if (values.json) io.out.write(JSON.stringify(list, null, 2) + '\n');
    else io.out.write(renderReleases(list) + '\n');
    return list.some((r) => !r.reachable) ? 1 : 0;
  },
};
