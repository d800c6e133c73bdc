import type { HostConfig } from '../../../config/types';
import { shQuote } from '../../../remote/quote';
import type { Step } from '../../../remote/steps';
import { formatBytes } from '../../../util/duration';
import { LAYOUT } from '../layout';
import { cd, currentName, type ScriptRun } from './common';
import { lockScript } from './lock';
import { repairScript } from './repair';

/**
 * Pre-flight on one host, in one round trip: the runtime answers, the disk has room, what `current` names and
 * whether this release is already complete there, then the lock, taken last and only if the checks passed. Once
 * the lock is ours, what a dead run left behind is repaired (see repairScript).
 * Each step prints `key=value` lines the caller reads back.
 */
export function preflightSteps(run: ScriptRun, host: HostConfig, owner: string): Step[] {
  const p = shQuote(host.path);
  const steps: Step[] = [
    { name: 'runtime', script: host.runtimeCheck, display: host.runtimeCheck },
    {
      name: 'disk',
      display: `df ${host.path} >= ${formatBytes(host.minFreeDiskBytes)}`,
      script: [
        // Only a host that lacks one of the folders pays for the mkdir.
        `[ -d ${p}/${LAYOUT.releases} ] && [ -d ${p}/${LAYOUT.shared} ] && [ -d ${p}/${LAYOUT.meta} ] || mkdir -p ${p}/${LAYOUT.releases} ${p}/${LAYOUT.shared} ${p}/${LAYOUT.meta} || exit 1`,
        // df's second line, split by `read` (no pipe, no awk): the fourth field is the space available.
        'free=',
        '{ read -r _; read -r _ _ _ free _; } <<EOF',
        `$(df -Pk ${p})`,
        'EOF',
        `case "$free" in ''|*[!0-9]*) echo "df -Pk ${host.path} gave no free space figure"; exit 1;; esac`,
        'free=$(( free * 1024 ))',
        'echo "free=$free"',
        `[ "$free" -ge ${host.minFreeDiskBytes} ] || exit 1`,
      ].join('\n'),
    },
    {
      name: 'state',
      display: 'readlink current',
      script: [
        cd(host),
        currentName(host),
        'echo "current=$cur"',
        `[ -f ${LAYOUT.releases}/${run.release.id}/${LAYOUT.releaseMarker} ] && echo complete=yes || echo complete=no`,
      ].join('\n'),
    },
    { name: 'lock', display: `mkdir ${LAYOUT.lock}`, script: lockScript(run, host, owner) },
  ];
  steps.push({
    name: 'sweep',
    display: 'repair what dead runs left (processes, uploads, temp files, unfinished deploys)',
    script: repairScript(run, host),
  });
  return steps;
}

/** The `key=value` lines of a pre-flight's output. */
export function preflightValues(outputs: Record<string, string>): Record<string, string> {
  const kv: Record<string, string> = {};
  for (const text of Object.values(outputs))
    for (const line of text.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) kv[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
  return kv;
}
