import type { Config } from '../config/types';
import { toDeployError } from '../errors';
import type { UploadFile } from '../remote/sftp';
import type { AuditRecord, ErrorInfo } from '../report/types';
import type { Redactor } from '../secrets/redact';
import type { DeployEvent } from './events';
import { releaseIdFor } from './release';

export interface Release {
  id: string;
  commit: string;
  ref: string;
}

export interface RunInfo {
  id?: string;
  url?: string;
  actor?: string;
  repository?: string;
}

/** Everything a phase or a target needs of the run; built once per run and passed down, never global. */
export interface RunContext {
  config: Config;
  release: Release;
  run: RunInfo;
  runToken: string;
  redactor: Redactor;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** The release's files, read from the commit in git (for targets that upload them). */
  files: UploadFile[];
  /** Redeploy even where the release is already current. */
  force?: boolean;
  emit(e: DeployEvent): void;
  /** Adds an action to the run's audit trail (the report); targets also write their own audit log. */
  audit(action: AuditRecord['action'], target: string, detail?: string): void;
  errorInfo(err: unknown, ctx?: { phase?: string; host?: string }): ErrorInfo;
}

/** An ErrorInfo from any thrown value, its message redacted. */
export function errorInfoWith(
  redactor: Redactor,
): (err: unknown, where?: { phase?: string; host?: string }) => ErrorInfo {
  return (err, where = {}) => {
    const e = toDeployError(err);
    return {
      class: e.errorClass,
      message: redactor.redact(e.message),
      phase: e.phase ?? where.phase,
      host: e.host ?? where.host,
    };
  };
}

/** A context for work outside a full run (post-step cleanup, operator commands, tests of single steps). */
export function makeContext(
  config: Config,
  opts: {
    runToken: string;
    env: NodeJS.ProcessEnv;
    redactor: Redactor;
    commit?: string;
    run?: RunInfo;
    signal?: AbortSignal;
    emit?: (e: DeployEvent) => void;
  },
): RunContext {
  const commit = opts.commit ?? '0'.repeat(40);
  const audit: AuditRecord[] = [];
  return {
    config,
    release: { id: releaseIdFor(commit), commit, ref: commit },
    run: opts.run ?? {},
    runToken: opts.runToken,
    redactor: opts.redactor,
    signal: opts.signal ?? new AbortController().signal,
    env: opts.env,
    files: [],
    emit: opts.emit ?? (() => undefined),
    audit: (action, host, detail) =>
      void audit.push({ time: new Date().toISOString(), action, host, detail }),
    errorInfo: errorInfoWith(opts.redactor),
  };
}
