import type { HostConfig } from '../../config/types';
import type { RunContext } from '../../run/context';
import type { TemplateVars } from '../../util/template';

/**
 * The `{{...}}` variables of an SSH host's checks and commands, for `release` (this run's, or the version a
 * rollback returns to). `target.*` names the same values as `host.*`, so a check can be written once for every
 * kind of target.
 */
export function sshTemplateVars(
  ctx: Pick<RunContext, 'release' | 'config'>,
  host: HostConfig,
  stage: string | undefined,
  release = ctx.release.id,
): TemplateVars {
  const vars: TemplateVars = {
    'host.name': host.name,
    'host.address': host.address,
    'host.path': host.path,
    'target.name': host.name,
    'target.address': host.address,
    'release.id': release,
    'release.commit': ctx.release.commit,
    project: ctx.config.project,
    'stage.name': stage,
  };
  for (const [k, v] of Object.entries(host.vars)) {
    vars[`host.vars.${k}`] = v;
    vars[`target.vars.${k}`] = v;
  }
  return vars;
}
