import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BaselineJob, BaselineResult, Property } from '../baseline/job';
import {
  AUDIT_LOG,
  ENV_FILE,
  envBefore,
  KEEP_RELEASES,
  RELEASE_LOG,
  RELEASE_MARKER,
  releasedLock,
  rollbackPointFile,
} from '../baseline/steps';
import { renderEnvFile } from '../workload';
import { exists, fileMode, readText } from './host-checks';

/**
 * What the safety properties of a baseline run (scenario property-cost) leave on a host, checked from its folder,
 * so a property that skipped its work fails verification. remote-timeout and repair-check leave nothing behind:
 * their work shows only in the host processes they cost.
 */
type Check = (host: string, dir: string) => string[];

/** The record's fields that differ from `want`, as problems. */
function fieldsDiffer(
  what: string,
  record: Record<string, unknown> | undefined,
  want: Record<string, unknown>,
) {
  if (!record) return [`${what} missing or not JSON`];
  const wrong = Object.entries(want).filter(([k, v]) => record[k] !== v);
  return wrong.map(([k, v]) => `${what} ${k} is ${JSON.stringify(record[k])}, expected ${JSON.stringify(v)}`);
}

function jsonOf(text: string | undefined): Record<string, unknown> | undefined {
  try {
    return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    return undefined;
  }
}

const lastLine = (file: string) => readText(file)?.trimEnd().split('\n').pop();

function inode(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

/** The file a redeploy replaced is kept beside it, whole, and the new one came by rename (another inode). */
function atomicEnvCheck(release: string, previous: string | undefined): Check {
  return (_host, dir) => {
    const saved = path.join(dir, envBefore(release));
    if (previous === undefined) return exists(saved) ? [`${envBefore(release)} on a first deploy`] : [];
    const why: string[] = [];
    const text = readText(saved);
    if (text === undefined) return [`${envBefore(release)} missing`];
    if (text !== renderEnvFile(previous))
      why.push(`${envBefore(release)} is not release ${previous}'s env file`);
    if (fileMode(saved) !== 0o600) why.push(`${envBefore(release)} mode ${fileMode(saved)?.toString(8)}`);
    if (inode(saved) === inode(path.join(dir, ENV_FILE))) why.push(`${ENV_FILE} was rewritten in place`);
    return why;
  };
}

function rollbackPointCheck(job: BaselineJob, previous: string | undefined): Check {
  return (_host, dir) => [
    ...fieldsDiffer('rollback point', jsonOf(readText(path.join(dir, rollbackPointFile(job.release)))), {
      release: job.release,
      previous: previous ?? null,
      run: job.runToken,
    }),
    ...fieldsDiffer(
      RELEASE_MARKER,
      jsonOf(readText(path.join(dir, 'releases', job.release, RELEASE_MARKER))),
      {
        id: job.release,
        run: job.runToken,
      },
    ),
  ];
}

function releaseLogCheck(job: BaselineJob, previous: string | undefined): Check {
  return (_host, dir) => {
    const why = fieldsDiffer('last release-log line', jsonOf(lastLine(path.join(dir, RELEASE_LOG))), {
      event: 'deploy',
      release: job.release,
      previous: previous ?? null,
      run: job.runToken,
    });
    const kept = fs.readdirSync(path.join(dir, 'releases')).length;
    if (kept > KEEP_RELEASES) why.push(`${kept} releases kept, more than ${KEEP_RELEASES}`);
    return why;
  };
}

function auditCheck(job: BaselineJob): Check {
  return (host, dir) =>
    fieldsDiffer('last audit line', jsonOf(lastLine(path.join(dir, AUDIT_LOG))), {
      action: 'lock-released',
      host,
      release: job.release,
      run: job.runToken,
    });
}

/** The lock was released by its owner check: nothing of it is left under its aside name. */
function lockOwnerCheck(job: BaselineJob): Check {
  return (_host, dir) =>
    exists(path.join(dir, releasedLock(job.runToken ?? ''))) ? ['lock left aside'] : [];
}

/** The second pass leaves no host state; the client's result says which hosts it read back. */
function verifyCheck(job: BaselineJob): Check {
  let reverified: Set<string> | undefined;
  return (host) => {
    if (!reverified) {
      const result = jsonOf(job.resultFile && readText(job.resultFile)) as BaselineResult | undefined;
      reverified = new Set(result?.reverified ?? []);
    }
    return reverified.has(host) ? [] : ['not read back by the verify pass'];
  };
}

/** The checks of a job's properties, for one host at a time; `previous` is the release deployed before. */
export function checkProperties(job: BaselineJob, previous: string | undefined): Check {
  const has = (p: Property) => job.properties?.includes(p) ?? false;
  const checks: Check[] = [];
  if (has('lock-owner')) checks.push(lockOwnerCheck(job));
  if (has('atomic-env')) checks.push(atomicEnvCheck(job.release, previous));
  if (has('rollback-point')) checks.push(rollbackPointCheck(job, previous));
  if (has('release-log')) checks.push(releaseLogCheck(job, previous));
  if (has('audit')) checks.push(auditCheck(job));
  if (has('verify')) checks.push(verifyCheck(job));
  return (host, dir) => checks.flatMap((c) => c(host, dir));
}
