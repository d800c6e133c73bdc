import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Fleet } from '../fleet/fleet';
import { envValues } from '../workload';
import { ScratchRepo } from './git-repo';
import {
  envDifferences,
  exists,
  fileMode,
  leftoverTempFiles,
  parseEnvValues,
  readLink,
  readText,
} from './host-checks';
import { homelabConfig, renderHomelabConfig, SOURCE_DIR, type HomelabConfig } from './homelab-config';
import type { DeployTool, PreparedRelease, PreparedRollback } from './tool';

/** The product's release id for a commit, as its README documents the host layout (releases/<id>). */
export function releaseIdOf(commit: string): string {
  return commit.slice(0, 12);
}

export interface HomelabToolOptions {
  cli: string;
  /** defaults.parallel and the stage's parallel; undefined keeps the product's own defaults */
  parallel?: number;
  /** a scenario's changes to the generated config (a rollout, another health check) */
  customize?: (config: HomelabConfig) => void;
  /** extra CLI arguments after `run --config … --ref …` (and after `rollback --to previous --config …`) */
  extraArgs?: string[];
  /** `--report-file` next to the config, one per release; PreparedRelease.reportFile names it */
  reportFile?: boolean;
}

export function homelabLabel(parallel: number | undefined): string {
  return parallel === undefined ? 'homelab-deploy' : `homelab-deploy p${parallel}`;
}

/** homelab-deploy's CLI deploying the fleet, one commit of a scratch repo per release. */
export function homelabTool(fleet: Fleet, workdir: string, o: HomelabToolOptions): DeployTool {
  const label = homelabLabel(o.parallel);
  const repo = new ScratchRepo(path.join(workdir, label.replace(/\s+/g, '-')));
  const configFile = path.join(repo.dir, 'deploy.yml');
  // Reports stay out of the scratch repo, whose every file is committed with the next release.
  const reports = `${repo.dir}-reports`;
  const reportPath = (name: string) => {
    fs.mkdirSync(reports, { recursive: true });
    return path.join(reports, name);
  };
  return {
    label,
    family: 'homelab',
    async prepare(release) {
      const values = envValues(release);
      const config = homelabConfig({
        hosts: fleet.hosts,
        user: fleet.user,
        privateKey: fleet.clientKey,
        knownHosts: fleet.knownHosts,
        release,
        secretKeys: values.map(([k]) => k),
        parallel: o.parallel,
      });
      o.customize?.(config);
      const commit = await repo.commit(
        {
          [`${SOURCE_DIR}/REVISION`]: `${release}\n`,
          'deploy.yml': renderHomelabConfig(
            config,
            `homelab-deploy benchmark: ${fleet.n} loopback hosts, release ${release}`,
          ),
        },
        `release ${release}`,
      );
      const rid = releaseIdOf(commit);
      const reportFile = o.reportFile ? reportPath(`run-${release}.json`) : undefined;
      const prepared: PreparedRelease = {
        release,
        id: rid,
        reportFile,
        command: {
          command: process.execPath,
          args: [
            o.cli,
            'run',
            '--config',
            configFile,
            '--ref',
            commit,
            ...(reportFile ? ['--report-file', reportFile] : []),
            ...(o.extraArgs ?? []),
          ],
          cwd: repo.dir,
          env: { ...process.env, ...Object.fromEntries(values) },
        },
        verify(previous) {
          return fleet.hosts.map((h) => ({
            host: h.name,
            problems: checkHomelabHost(h.dir, release, rid, values, previous?.id),
          }));
        },
      };
      return prepared;
    },
    prepareRollback(from, to): PreparedRollback {
      // The config in the scratch repo's working tree is the one `from` was deployed with.
      const reportFile = o.reportFile ? reportPath(`rollback-${from.release}.json`) : undefined;
      const values = envValues(to.release);
      return {
        reportFile,
        command: {
          command: process.execPath,
          args: [
            o.cli,
            'rollback',
            '--to',
            'previous',
            '--config',
            configFile,
            ...(reportFile ? ['--report-file', reportFile] : []),
            ...(o.extraArgs ?? []),
          ],
          cwd: repo.dir,
          env: from.command.env,
        },
        verify() {
          return fleet.hosts.map((h) => ({
            host: h.name,
            problems: checkHomelabRollback(h.dir, to.release, to.id, values),
          }));
        },
      };
    },
  };
}

/**
 * After `rollback --to previous`: current back on the older release, its env file restored (the product keeps
 * the one each release replaced), no lock and no temp files left.
 */
export function checkHomelabRollback(
  dir: string,
  release: string,
  rid: string,
  values: [string, string][],
): string[] {
  const why: string[] = [];
  const link = readLink(path.join(dir, 'current'));
  if (link !== `releases/${rid}`) why.push(`current -> ${link ?? '(missing)'}, expected releases/${rid}`);
  const rev = readText(path.join(dir, 'current/REVISION'));
  if (rev?.trim() !== release)
    why.push(`REVISION ${rev === undefined ? 'missing' : JSON.stringify(rev.trim())}`);
  const env = readText(path.join(dir, 'shared/.env'));
  if (env === undefined) why.push('shared/.env missing');
  else why.push(...envDifferences(parseEnvValues(env), values).map((p) => `shared/.env ${p}`));
  if (exists(path.join(dir, '.homelab-deploy/lock'))) why.push('lock left behind');
  const temp = leftoverTempFiles(dir, ['shared', 'releases', '.homelab-deploy']);
  if (temp.length) why.push(`temp files left: ${temp.join(' ')}`);
  return why;
}

/** The product's documented host layout (README, "On each host") after deploying `release` as `rid`. */
export function checkHomelabHost(
  dir: string,
  release: string,
  rid: string,
  values: [string, string][],
  previousRid: string | undefined,
): string[] {
  const why: string[] = [];
  const link = readLink(path.join(dir, 'current'));
  if (link !== `releases/${rid}`) why.push(`current -> ${link ?? '(missing)'}`);
  const rev = readText(path.join(dir, 'current/REVISION'));
  if (rev?.trim() !== release)
    why.push(`REVISION ${rev === undefined ? 'missing' : JSON.stringify(rev.trim())}`);
  try {
    const marker = JSON.parse(readText(path.join(dir, 'releases', rid, '.release.json')) ?? '') as {
      id?: string;
    };
    if (marker.id !== rid) why.push(`.release.json names ${marker.id}`);
  } catch {
    why.push('.release.json missing or unreadable');
  }
  const envFile = path.join(dir, 'shared/.env');
  const env = readText(envFile);
  if (env === undefined) why.push('shared/.env missing');
  else {
    why.push(...envDifferences(parseEnvValues(env), values).map((p) => `shared/.env ${p}`));
    const mode = fileMode(envFile);
    if (mode !== 0o600) why.push(`shared/.env mode ${mode?.toString(8)}`);
  }
  try {
    const point = JSON.parse(
      readText(path.join(dir, `.homelab-deploy/rollback-point-${rid}.json`)) ?? '',
    ) as {
      previous?: string | null;
    };
    if ((point.previous ?? undefined) !== previousRid)
      why.push(`rollback point names ${point.previous}, expected ${previousRid ?? null}`);
  } catch {
    why.push('previous release not recorded (no rollback point)');
  }
  if (exists(path.join(dir, '.homelab-deploy/lock'))) why.push('lock left behind');
  const temp = leftoverTempFiles(dir, ['shared', 'releases', '.homelab-deploy']);
  if (temp.length) why.push(`temp files left: ${temp.join(' ')}`);
  return why;
}

export function assertCli(cli: string): void {
  if (!fs.existsSync(cli)) throw new Error(`homelab-deploy CLI not found: ${cli} (set HD_CLI to a bundle)`);
}
