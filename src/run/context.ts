import type { Config, HostConfig } from '../config/types';
import { ConnectionPool } from '../remote/pool';
import { toDeployError } from '../errors';
import { releaseIdFor } from '../deploy/layout';
import type { UploadFile } from '../remote/sftp';
import type { ErrorInfo } from '../report/types';
import type { Redactor } from '../secrets/redact';
import type { TemplateVars } from '../util/template';
import type { DeployEvent } from './events';

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

/** Everything a phase needs; built once per run and passed down, never global. */
export interface RunContext {
  config: Config;
  release: Release;
  run: RunInfo;
  runToken: string;
  pool: ConnectionPool;
  redactor: Redactor;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  files: UploadFile[];
  /** Redeploy even where the release is already current. */
  force?: boolean;
  emit(e: DeployEvent): void;
  errorInfo(err: unknown, ctx?: { phase?: string; host?: string }): ErrorInfo;
}

export function templateVars(ctx: RunContext, host: HostConfig, stage?: string): TemplateVars {
  const vars: TemplateVars = {
    'host.name': host.name,
    'host.address': host.address,
    'host.path': host.path,
    'release.id': ctx.release.id,
    'release.commit': ctx.release.commit,
    project: ctx.config.project,
    'stage.name': stage,
  };
  for (const [k, v] of Object.entries(host.vars)) vars[`host.vars.${k}`] = v;
  return vars;
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
    fallbackKey?: string;
    fallbackKnownHosts?: string;
    signal?: AbortSignal;
  },
): RunContext {
  const commit = opts.commit ?? '0'.repeat(40);
  return {
    config,
    release: { id: releaseIdFor(commit), commit, ref: commit },
    run: opts.run ?? {},
    runToken: opts.runToken,
    pool: new ConnectionPool(config, opts),
    redactor: opts.redactor,
    signal: opts.signal ?? new AbortController().signal,
    env: opts.env,
    files: [],
    emit: () => undefined,
    errorInfo: (err, where = {}) => {
      const e = toDeployError(err);
      return {
        class: e.errorClass,
        message: opts.redactor.redact(e.message),
        phase: e.phase ?? where.phase,
        host: e.host ?? where.host,
      };
    },
  };
}
