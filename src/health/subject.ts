import type { HealthCheck } from '../config/types';
import type { ExecResult } from '../util/shell';
import type { TemplateVars } from '../util/template';
import type { ProbeResult } from './http';

/**
 * What a health check runs against: one target, for one stage and release. Targets build it (they know their
 * variables and where their commands run); the checks know nothing of SSH, HTTP APIs or the runner.
 */
export interface HealthSubject {
  /** Target name, for messages. */
  name: string;
  vars: TemplateVars;
  /** Environment for commands that concern this target (HD_RELEASE, HD_STAGE, HD_VAR_<NAME>, ...). */
  env: Record<string, string>;
  /**
   * The release id an `expect.release` check must see; undefined when it is not known (an old version deployed by
   * something else), and then release markers are not checked.
   */
  release: string | undefined;
  /** Runs a `command` check where the target's commands run (over SSH on a host, on the runner otherwise). */
  exec(command: string, opts: { timeoutMs: number; signal: AbortSignal }): Promise<ExecResult>;
  /** A `compose` check; only SSH hosts with the compose strategy have one. */
  compose?(check: HealthCheck, opts: { timeoutMs: number; signal: AbortSignal }): Promise<ProbeResult>;
}
