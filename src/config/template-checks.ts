import { DeployError } from '../errors';
import { placeholderNames, renderShellTemplate, renderTemplate, type TemplateVars } from '../util/template';
import { quoteValue, type ConfigIssue } from './errors';
import { resolveHealth } from './resolve';
import type { ConfigInput, HealthCheckInput } from './schema';
import { nearest } from './suggest';
import {
  checkTemplates,
  templateVariables,
  testsTargets,
  type TemplateKind,
  type TemplateRelease,
} from './templates';
import type { Config, StageConfig } from './types';

/**
 * Load-time checks of every template against each target it will be rendered for: placeholders that do not exist
 * there, and values that are not what the check needs once filled in (an http check's URL, a tcp check's
 * host:port). At run time these would fail only after staging had switched to the new release.
 */

/** The release is chosen at run time; a commit-shaped stand-in renders like a real one. */
const SAMPLE_RELEASE: TemplateRelease = { id: '0'.repeat(12), commit: '0'.repeat(40) };

/** Templates are quoted whole where they can: cutting one short could hide the mistake. */
const TEMPLATE_QUOTE = 200;

interface Use {
  target: string;
  stage: string;
}

interface Site {
  path: string;
  kind: TemplateKind;
  template: string;
  uses: Use[];
}

export function templateIssues(input: ConfigInput, config: Config): ConfigIssue[] {
  const known = (t: string) => config.targets[t] !== undefined || config.hosts[t] !== undefined;
  const stageUses = (s: StageConfig | undefined, targets = s?.targets ?? []): Use[] =>
    s ? targets.filter(known).map((target) => ({ target, stage: s.name })) : [];
  // Global and verify checks run on every host of every stage, with that host's stage (verify: the host's stage).
  const everyUse = config.stages.flatMap((s) => stageUses(s));
  const sites: Site[] = [];
  const fromCheck = (c: HealthCheckInput, path: string, uses: Use[]) => {
    for (const t of checkTemplates(resolveHealth(c, path, config.dir)))
      sites.push({ path: `${path}.${t.field}`, kind: t.kind, template: t.template, uses });
  };
  const fromTests = (s: StageConfig | undefined, path: string) => {
    if (s?.tests)
      sites.push({ path, kind: 'shell', template: s.tests.run, uses: stageUses(s, testsTargets(s)) });
  };

  (input.health ?? []).forEach((c, i) => fromCheck(c, `health.${i}`, everyUse));
  if (input.stages) {
    // resolveConfig keeps the order of `stages`, so the n-th input stage is the n-th resolved one.
    input.stages.forEach((s, k) => {
      (s.health ?? []).forEach((c, j) =>
        fromCheck(c, `stages.${k}.health.${j}`, stageUses(config.stages[k])),
      );
      fromTests(config.stages[k], `stages.${k}.tests.run`);
    });
  } else if (input.tests) {
    fromTests(
      config.stages.find((s) => s.name === 'staging'),
      'tests.run',
    );
  }
  (input.verify?.health ?? []).forEach((c, i) => fromCheck(c, `verify.health.${i}`, everyUse));

  return sites.flatMap((s) => [...headerNameIssues(s), ...siteIssues(config, s)]);
}

/** Node refuses to send a header whose name is not an HTTP token; say so before the check runs. */
function headerNameIssues(site: Site): ConfigIssue[] {
  if (site.kind !== 'header') return [];
  const name = site.path.slice(site.path.indexOf('.headers.') + '.headers.'.length);
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)
    ? []
    : [
        {
          path: site.path,
          message: `header name ${quoteValue(name)} is not a valid HTTP header name (letters, digits and !#$%&'*+.^_\`|~-)`,
        },
      ];
}

function siteIssues(config: Config, site: Site): ConfigIssue[] {
  const names = placeholderNames(site.template);
  const uses = [...new Map(site.uses.map((u) => [u.target, u])).values()];
  const varsOf = new Map<string, TemplateVars>();
  const missing = new Map<string, string[]>();
  const bad = new Map<string, { targets: string[]; rendered?: string }>();
  // Targets that give the template's placeholders the same values render alike: each distinct set is checked once.
  const verdicts = new Map<string, { problem: string; rendered?: string } | undefined>();
  for (const u of uses) {
    const vars = templateVariables(config, u.target, u.stage, SAMPLE_RELEASE);
    varsOf.set(u.target, vars);
    const absent = names.filter((n) => !(n in vars));
    for (const n of absent) missing.set(n, [...(missing.get(n) ?? []), u.target]);
    if (absent.length > 0) continue;
    // Only the names the template uses are filled; a value known only at run time renders as a neutral
    // stand-in of its shape: a URL for the names that hold one (a Vercel deployment's URL), else a word.
    const filled: TemplateVars = {};
    for (const n of names)
      filled[n] = vars[n] ?? (/(^|\.|_)url$/.test(n) ? 'https://deployment.invalid' : '0');
    const key = JSON.stringify(names.map((n) => filled[n]));
    if (!verdicts.has(key)) verdicts.set(key, renderProblem(site, filled));
    const r = verdicts.get(key);
    if (!r) continue;
    const seen = bad.get(r.problem);
    if (seen) seen.targets.push(u.target);
    else bad.set(r.problem, { targets: [u.target], rendered: r.rendered });
  }

  const issues: ConfigIssue[] = [];
  const noun = (t: string) => ((config.targets[t] ?? config.hosts[t])?.kind === 'ssh' ? 'host' : 'target');
  const forTargets = (ts: string[]) =>
    ts.length === 1
      ? `for ${noun(ts[0])} "${ts[0]}"`
      : `for ${noun(ts[0])}s ${ts.map((t) => `"${t}"`).join(', ')}`;

  for (const [name, failing] of missing) {
    const candidates = Object.keys(varsOf.get(failing[0]) ?? {});
    const hint = nearest(name, candidates);
    const suggestion = hint ? `did you mean {{${hint}}}?` : `known: ${candidates.join(', ')}`;
    const having = uses.map((u) => u.target).filter((t) => !failing.includes(t));
    if (having.length === 0) {
      issues.push({
        path: site.path,
        message: `unknown placeholder {{${name}}} ${forTargets(failing)}; ${suggestion}`,
      });
      continue;
    }
    const v = /^host\.vars\.(.+)$/.exec(name);
    const why = v
      ? `: ${failing.length === 1 ? 'it sets' : 'they set'} no vars.${v[1]} (${having.map((t) => `"${t}"`).join(', ')} ${having.length === 1 ? 'does' : 'do'})`
      : ` (it has one for ${having.map((t) => `"${t}"`).join(', ')})`;
    issues.push({
      path: site.path,
      message: `{{${name}}} has no value ${forTargets(failing)}${why}${hint ? `; did you mean {{${hint}}}?` : ''}`,
    });
  }

  for (const [problem, { targets, rendered }] of bad) {
    const everywhere = targets.length === uses.length;
    const tpl = quoteValue(site.template, TEMPLATE_QUOTE);
    if (rendered === undefined || (names.length === 0 && everywhere)) {
      // The same whatever the target (no placeholders, or a problem of the template itself).
      issues.push({ path: site.path, message: `${problem}${everywhere ? '' : ` ${forTargets(targets)}`}` });
      continue;
    }
    const what = site.kind === 'url' ? 'an absolute http(s) URL' : 'host:port with a port from 1 to 65535';
    const rest = targets.slice(1);
    issues.push({
      path: site.path,
      message:
        `${tpl} renders to ${quoteValue(rendered, TEMPLATE_QUOTE)} ${forTargets([targets[0]])}, which is not ${what}: ${problem}` +
        (rest.length ? `; likewise ${forTargets(rest)}` : ''),
    });
  }
  return issues;
}

/**
 * What is wrong with a template once filled with one target's values; `rendered` is set when the problem is in the
 * result (quoted with the template), unset when the message says all.
 */
function renderProblem(site: Site, vars: TemplateVars): { problem: string; rendered?: string } | undefined {
  switch (site.kind) {
    case 'url': {
      const rendered = renderTemplate(site.template, vars, site.path);
      const problem = urlProblem(rendered);
      if (!problem) return undefined;
      return placeholderNames(site.template).length
        ? { problem, rendered }
        : { problem: `${quoteValue(rendered, TEMPLATE_QUOTE)} is not an absolute http(s) URL: ${problem}` };
    }
    case 'host-port': {
      const rendered = renderTemplate(site.template, vars, site.path);
      const problem = hostPortProblem(rendered);
      if (!problem) return undefined;
      return placeholderNames(site.template).length
        ? { problem, rendered }
        : {
            problem: `${quoteValue(rendered, TEMPLATE_QUOTE)} is not host:port with a port from 1 to 65535: ${problem}`,
          };
    }
    case 'header':
      // Not quoted: header values are where tokens get written.
      return /[\r\n\0]/.test(renderTemplate(site.template, vars, site.path))
        ? { problem: 'the header value contains a line break or NUL byte once its placeholders are filled' }
        : undefined;
    case 'shell':
      try {
        renderShellTemplate(site.template, vars, site.path);
        return undefined;
      } catch (err) {
        if (!(err instanceof DeployError)) throw err;
        return { problem: err.message.replace(`${site.path}: `, '') };
      }
  }
}

/** Why a rendered http check target is not something the probe can request, or undefined. */
export function urlProblem(text: string): string | undefined {
  const schemed = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    if (!schemed) return 'it does not start with "http://" or "https://"';
    // fd00::1 as a URL's host reads as host "fd00" with a port; brackets say where the address ends.
    if (/^[a-z]+:\/\/[^/[\]@]*:[^/]*:/i.test(text))
      return 'it does not parse as a URL (an IPv6 address needs brackets: http://[fd00::1]:8080/)';
    return 'it does not parse as a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return schemed
      ? `its scheme is "${url.protocol.slice(0, -1)}", expected http or https`
      : 'it does not start with "http://" or "https://"';
  if (!url.hostname) return 'it has no host';
  return undefined;
}

/** Why a rendered tcp check target is not host:port (read as the probe reads it: the last ":" splits), or undefined. */
export function hostPortProblem(text: string): string | undefined {
  const i = text.lastIndexOf(':');
  if (i < 0) return 'it has no ":port"';
  const host = text.slice(0, i).replace(/^\[|\]$/g, '');
  const port = text.slice(i + 1);
  if (!host) return 'it has no host before ":"';
  if (/[\s/]/.test(host)) return `the host ${quoteValue(host)} contains a space or "/"`;
  if (!/^\d+$/.test(port)) return `the port ${quoteValue(port)} is not a number`;
  const n = Number(port);
  if (n < 1 || n > 65535) return `the port ${n} is not from 1 to 65535`;
  return undefined;
}
