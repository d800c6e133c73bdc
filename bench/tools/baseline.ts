import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BaselineJob, Property } from '../baseline/job';
import { ENV_FILE, LOCK, PREVIOUS } from '../baseline/steps';
import type { Fleet } from '../fleet/fleet';
import { MIN_FREE_KIB, renderEnvFile } from '../workload';
import { exists, fileMode, leftoverTempFiles, readLink, readText } from './host-checks';
import { checkProperties } from './property-checks';
import type { DeployTool, PreparedRelease, PreparedRollback } from './tool';

/** The reference client's concurrency: hosts deployed at once. */
export const BASELINE_CONCURRENCY = 100;

export const BASELINE_LABEL = 'ssh2 baseline';

/** The label of the baseline with safety properties added (scenario property-cost). */
export function baselineLabel(properties: readonly Property[]): string {
  return properties.length ? `${BASELINE_LABEL} + ${properties.join(' + ')}` : BASELINE_LABEL;
}

/**
 * The ssh2 baseline; `properties` adds homelab-deploy's safety properties to its deploy (steps.ts), and the
 * end-state check then wants what they leave on each host as well (property-checks.ts).
 */
export function baselineTool(
  fleet: Fleet,
  workdir: string,
  entry: string,
  o: { properties?: Property[]; label?: string } = {},
): DeployTool {
  const properties = o.properties ?? [];
  const label = o.label ?? baselineLabel(properties);
  const dir = path.join(workdir, properties.length ? label.replace(/[^A-Za-z0-9._-]+/g, '-') : 'baseline');
  fs.mkdirSync(dir, { recursive: true });
  const jobOf = (action: BaselineJob['action'], release: string, envFile: string): BaselineJob => ({
    action,
    user: fleet.user,
    privateKeyFile: fleet.clientKey,
    knownHostsFile: fleet.knownHosts,
    concurrency: BASELINE_CONCURRENCY,
    release,
    envFile,
    minFreeKib: MIN_FREE_KIB,
    connectTimeoutMs: 60_000,
    hosts: fleet.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, dir: h.dir })),
  });
  // The plain job stays exactly what it was before properties existed.
  const withProperties = (job: BaselineJob, release: string): BaselineJob =>
    properties.length
      ? {
          ...job,
          properties,
          runToken: randomBytes(6).toString('hex'),
          resultFile: path.join(dir, `${release}.result.json`),
        }
      : job;
  return {
    label,
    family: 'baseline',
    async prepare(release) {
      const envText = renderEnvFile(release);
      const envFile = path.join(dir, `${release}.env`);
      fs.writeFileSync(envFile, envText, { mode: 0o600 });
      const job = withProperties(jobOf('deploy', release, envFile), release);
      const jobFile = path.join(dir, `${release}.job.json`);
      fs.writeFileSync(jobFile, JSON.stringify(job));
      const prepared: PreparedRelease = {
        release,
        id: release,
        command: { command: process.execPath, args: [entry, jobFile] },
        verify(previous) {
          const extra = checkProperties(job, previous?.release);
          return fleet.hosts.map((h) => ({
            host: h.name,
            problems: [
              ...checkBaselineHost(h.dir, release, envText, previous?.release),
              ...extra(h.name, h.dir),
            ],
          }));
        },
      };
      return prepared;
    },
    prepareRollback(from, to): PreparedRollback {
      const jobFile = path.join(dir, `rollback-${from.release}.job.json`);
      fs.writeFileSync(jobFile, JSON.stringify(jobOf('rollback', to.release, '')));
      return {
        command: { command: process.execPath, args: [entry, jobFile] },
        verify() {
          return fleet.hosts.map((h) => ({
            host: h.name,
            problems: checkBaselineRollback(h.dir, to.release),
          }));
        },
      };
    },
  };
}

/** After the baseline's rollback: current back on `to`, the lock and the switch's temp link gone. */
export function checkBaselineRollback(dir: string, to: string): string[] {
  const why: string[] = [];
  const link = readLink(path.join(dir, 'current'));
  if (link !== `releases/${to}`) why.push(`current -> ${link ?? '(missing)'}, expected releases/${to}`);
  const rev = readText(path.join(dir, 'current/REVISION'));
  if (rev?.trim() !== to) why.push(`REVISION ${rev === undefined ? 'missing' : JSON.stringify(rev.trim())}`);
  if (exists(path.join(dir, LOCK))) why.push('lock left behind');
  const temp = leftoverTempFiles(dir, ['releases']);
  if (temp.length) why.push(`temp files left: ${temp.join(' ')}`);
  return why;
}

export function checkBaselineHost(
  dir: string,
  release: string,
  envText: string,
  previous: string | undefined,
): string[] {
  const why: string[] = [];
  const link = readLink(path.join(dir, 'current'));
  if (link !== `releases/${release}`) why.push(`current -> ${link ?? '(missing)'}`);
  const rev = readText(path.join(dir, 'current/REVISION'));
  if (rev?.trim() !== release)
    why.push(`REVISION ${rev === undefined ? 'missing' : JSON.stringify(rev.trim())}`);
  const env = readText(path.join(dir, ENV_FILE));
  if (env === undefined) why.push('.env missing');
  else {
    if (env !== envText) why.push('.env differs from the release env file');
    const mode = fileMode(path.join(dir, ENV_FILE));
    if (mode !== 0o600) why.push(`.env mode ${mode?.toString(8)}`);
  }
  const prev = readText(path.join(dir, PREVIOUS));
  if (prev === undefined) why.push('previous release not recorded');
  else if (prev.trim() !== (previous ?? ''))
    why.push(`previous is ${JSON.stringify(prev.trim())}, expected ${JSON.stringify(previous ?? '')}`);
  if (exists(path.join(dir, LOCK))) why.push('lock left behind');
  const temp = leftoverTempFiles(dir, ['releases']);
  if (temp.length) why.push(`temp files left: ${temp.join(' ')}`);
  return why;
}
