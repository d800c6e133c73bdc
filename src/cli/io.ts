import * as fs from 'node:fs';
import * as os from 'node:os';
import type { RunInfo } from '../run/context';

/** Where the CLI talks to; tests pass their own to run it in-process. */
export interface CliIo {
  out: { write(text: string): unknown };
  err: { write(text: string): unknown };
  env?: NodeJS.ProcessEnv;
  /** Source of SIGINT/SIGTERM (default: the process). */
  signals?: {
    on(signal: 'SIGINT' | 'SIGTERM', fn: (signal: NodeJS.Signals) => void): unknown;
    removeListener(signal: 'SIGINT' | 'SIGTERM', fn: (signal: NodeJS.Signals) => void): unknown;
  };
  /** How a second signal ends the process (default: process.exit). */
  exit?: (code: number) => void;
}

export function defaultConfig(): string {
  return fs.existsSync('homelab-deploy.yml') ? 'homelab-deploy.yml' : '.github/homelab/deploy.yml';
}

export function operatorName(env: NodeJS.ProcessEnv): string {
  if (env.GITHUB_ACTIONS === 'true' && env.GITHUB_ACTOR) return env.GITHUB_ACTOR;
  if (env.USER) return env.USER;
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** The run's identity for lock owner records and logs: the GitHub run when inside one, else the operator. */
export function runInfo(env: NodeJS.ProcessEnv, actor: string | undefined): RunInfo {
  const inActions = env.GITHUB_ACTIONS === 'true';
  const repo = inActions ? env.GITHUB_REPOSITORY : undefined;
  const id = inActions ? env.GITHUB_RUN_ID : undefined;
  return {
    id: id ? `${id}-${env.GITHUB_RUN_ATTEMPT ?? '1'}` : undefined,
    url:
      repo && id ? `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${repo}/actions/runs/${id}` : undefined,
    actor: actor ?? operatorName(env),
    repository: repo,
  };
}
