import * as fs from 'node:fs';
import * as os from 'node:os';
import type { RunInfo } from '../run/context';

/** Where the CLI talks to; tests pass their own to run it in-process. */
/** A stream the CLI writes to; `isTTY` decides between a live progress line and plain log lines. */
export interface OutStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Where a confirmation is read from (default: stdin); asked only when it is a terminal. */
export interface InStream {
  isTTY?: boolean;
  on(event: 'data', fn: (chunk: Buffer | string) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  removeListener(event: 'data', fn: (chunk: Buffer | string) => void): unknown;
  removeListener(event: 'end', fn: () => void): unknown;
  resume?(): unknown;
  pause?(): unknown;
}

export interface CliIo {
  out: OutStream;
  err: OutStream;
  input?: InStream;
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
