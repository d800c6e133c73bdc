import { fillPlaceholders, type TemplateVars } from '../util/template';
import type { Config, HealthCheck, StageConfig, TargetConfig } from './types';

/**
 * The `{{...}}` placeholders a config may use, per target and stage, and where templates appear. The run fills the
 * same names (each target's health subject); `validate` and `plan` use this module to check and show them before any
 * target is touched.
 */

export interface TemplateRelease {
  id: string;
  commit: string;
}

/**
 * The variables a template rendered for `targetName` in `stage` can use. A name whose value is only known at run
 * time is present with the value undefined: the release when none is given (`plan` runs before one is chosen),
 * a runner target's `version`. New target kinds add their names in targetVariables.
 */
export function templateVariables(
  config: Config,
  targetName: string,
  stage: string | undefined,
  release?: TemplateRelease,
): TemplateVars {
  const target = config.targets[targetName] ?? config.hosts[targetName];
  const own = target ? targetVariables(target) : {};
  const vars: TemplateVars = {};
  // Target names first, then run-wide ones, then vars: the order a "known:" list reads best in.
  const isVar = (k: string) => /^(host|target)\.vars\./.test(k);
  for (const [k, v] of Object.entries(own)) if (!isVar(k)) vars[k] = v;
  vars['release.id'] = release?.id;
  vars['release.commit'] = release?.commit;
  vars.project = config.project;
  if (stage !== undefined) vars['stage.name'] = stage;
  for (const [k, v] of Object.entries(own)) if (isVar(k)) vars[k] = v;
  return vars;
}

/** The placeholder names that exist for one target in one stage. */
export function templateVariableNames(
  config: Config,
  targetName: string,
  stage: string | undefined,
): string[] {
  return Object.keys(templateVariables(config, targetName, stage));
}

/** What a target of each kind contributes to templates. */
export function targetVariables(target: TargetConfig): TemplateVars {
  switch (target.kind) {
    case 'ssh': {
      // target.* names the same values as host.*, so a check can be written once for every kind of target.
      const vars: TemplateVars = {
        'host.name': target.name,
        'host.address': target.address,
        'host.path': target.path,
        'target.name': target.name,
        'target.address': target.address,
      };
      for (const [k, v] of Object.entries(target.vars)) {
        vars[`host.vars.${k}`] = v;
        vars[`target.vars.${k}`] = v;
      }
      return vars;
    }
    case 'runner': {
      // The names the runner target's health subject fills (targets/runner/runner-target.ts). `previous` and
      // `version` are what is live before and after the deploy: known names, values only at run time.
      const vars: TemplateVars = {
        'target.name': target.name,
        'target.kind': target.kind,
        'host.name': target.name,
        previous: undefined,
        version: undefined,
      };
      for (const [k, v] of Object.entries(target.vars)) {
        vars[`target.vars.${k}`] = v;
        vars[`host.vars.${k}`] = v;
      }
      return vars;
    }
    case 'vercel': {
      // The names the Vercel target's health subject fills (targets/vercel/target.ts): the deployment's own URL
      // before promotion, the production domain after; known names, values only at run time.
      const vars: TemplateVars = {
        'target.name': target.name,
        'target.kind': target.kind,
        'target.project': target.project,
        'target.url': undefined,
        'target.deployment': undefined,
        'target.deployment_url': undefined,
        'target.domain': target.domains[0],
        'target.production_url': target.domains[0] ? `https://${target.domains[0]}` : undefined,
      };
      for (const [k, v] of Object.entries(target.vars)) vars[`target.vars.${k}`] = v;
      return vars;
    }
  }
}

/** How a rendered template is used, which decides what a valid result is. */
export type TemplateKind = 'url' | 'host-port' | 'shell' | 'header';

export interface TemplateSite {
  /** The key of the check that holds the template: `http`, `tcp`, `command`, `headers.<name>`. */
  field: string;
  kind: TemplateKind;
  template: string;
}

/** The templates of one health check. Compose checks name services, which are not rendered. */
export function checkTemplates(check: HealthCheck): TemplateSite[] {
  switch (check.kind) {
    case 'http':
      return [
        { field: 'http', kind: 'url', template: check.target },
        ...Object.entries(check.headers).map(([name, value]) => ({
          field: `headers.${name}`,
          kind: 'header' as const,
          template: value,
        })),
      ];
    case 'tcp':
      return [{ field: 'tcp', kind: 'host-port', template: check.target }];
    case 'command':
      return [{ field: 'command', kind: 'shell', template: check.target }];
    case 'compose':
      return [];
  }
}

/**
 * The targets a stage's tests command is rendered for. On the runner the command takes the vars of the first
 * selected host of the stage, and `--targets` decides which that is, so every host of the stage counts.
 */
export function testsTargets(stage: StageConfig): string[] {
  if (!stage.tests) return [];
  return stage.tests.on === 'runner' ? stage.targets : [stage.tests.on];
}

export interface RenderedTemplate {
  where: string;
  template: string;
  rendered: string;
}

/**
 * Every template rendered for one target in one stage (its stage's health checks, the tests command when it runs
 * for this target, the verify checks), filled with that target's values, for `plan` to show. A release id or
 * commit stays `{{release.id}}` unless `release` is given. Both texts pass through `mask` (e.g. a Redactor's
 * `redact`): secrets have no placeholders, but a value written into a host var could still be one.
 */
export function renderedTemplates(
  config: Config,
  targetName: string,
  stage: string,
  mask: (text: string) => string,
  release?: TemplateRelease,
): RenderedTemplate[] {
  const st = config.stages.find((s) => s.name === stage);
  if (!st || !st.targets.includes(targetName)) return [];
  const vars = templateVariables(config, targetName, stage, release);
  const out: RenderedTemplate[] = [];
  const add = (where: string, template: string) =>
    out.push({
      where,
      template: mask(template),
      rendered: mask(fillPlaceholders(template, (name) => vars[name] ?? `{{${name}}}`)),
    });
  for (const c of st.health)
    for (const t of checkTemplates(c)) add(`health "${c.name}" ${t.field}`, t.template);
  if (st.tests && testsTargets(st).includes(targetName)) add('tests.run', st.tests.run);
  for (const c of config.verify.health)
    for (const t of checkTemplates(c)) add(`verify health "${c.name}" ${t.field}`, t.template);
  return out;
}
