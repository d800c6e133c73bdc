import type { DeploySettings, HostConfig } from '../../config/types';
import { shQuote } from '../../remote/quote';

/** The shell command that brings the stack up in the release directory (the cwd when it runs). */
export function upCommand(d: DeploySettings, project: string): string {
  if (d.strategy === 'command') return d.up;
  const base = composeBase(d, project);
  const up = `${base} up -d --remove-orphans${d.upFlags.map((f) => ' ' + shQuote(f)).join('')}`;
  return d.pull ? `${base} pull && ${up}` : up;
}

/** Stops the stack; used when a first deploy is rolled back and there is no previous release to return to. */
export function downCommand(d: DeploySettings, project: string): string | undefined {
  if (d.strategy === 'command') return d.down;
  return `${composeBase(d, project)} down${d.downFlags.map((f) => ' ' + shQuote(f)).join('')}`;
}

function composeBase(d: Extract<DeploySettings, { strategy: 'compose' }>, project: string): string {
  return `${d.command} -p ${shQuote(project)}${d.files.map((f) => ` -f ${shQuote(f)}`).join('')}`;
}

export function releaseEnv(
  host: HostConfig,
  project: string,
  release: { id: string; commit: string },
  stage?: string,
): Record<string, string> {
  return {
    HD_PROJECT: project,
    HD_HOST: host.name,
    HD_PATH: host.path,
    HD_RELEASE: release.id,
    HD_COMMIT: release.commit,
    HD_STAGE: stage ?? '',
    // Host vars reach up/down/test commands as HD_VAR_<NAME>, so one stack can run differently per host.
    ...Object.fromEntries(
      Object.entries(host.vars).map(([k, v]) => [`HD_VAR_${k.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`, v]),
    ),
  };
}
