import type { Config, HostConfig } from '../config/types';
import type { ConnectionPool } from '../remote/pool';
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
