import { targetVariables, templateVariables } from '../../config/templates';
import type { HostConfig } from '../../config/types';
import type { RunContext } from '../../run/context';
import type { TemplateVars } from '../../util/template';

/**
 * The `{{...}}` variables of an SSH host's checks and commands, for `release` (this run's, or the version a
 * rollback returns to): the names config/templates.ts declares, so `validate` checks exactly what runs. The host's
 * own values come from `host` itself, which may differ from the config's entry (tests aim a host at loopback).
 */
export function sshTemplateVars(
  ctx: Pick<RunContext, 'release' | 'config'>,
  host: HostConfig,
  stage: string | undefined,
  release = ctx.release.id,
): TemplateVars {
  return {
    ...templateVariables(ctx.config, host.name, stage, { id: release, commit: ctx.release.commit }),
    ...targetVariables(host),
  };
}
