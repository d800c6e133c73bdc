import type { ConfigIssue } from './errors';
import { isPattern } from './select';
import { nearest } from './suggest';

/**
 * Checks that span the file (a stage naming a host, a jump host, a host in two stages, ...). They read the raw
 * parsed YAML defensively, so they run even when the schema rejected other parts of the file: a user then sees a
 * misspelt stage host together with a bad port, in one pass, instead of one after fixing the other.
 */

type Loose = Record<string, unknown>;

const obj = (v: unknown): Loose | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Loose) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const has = (o: Loose, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

export const RESERVED_STAGE_NAMES = ['preflight', 'secrets', 'snapshot', 'verify', 'all', 'rollback'];

export function unknownHost(name: string, known: string[]): string {
  const hint = nearest(name, known);
  return `unknown host "${name}"${hint ? `; did you mean "${hint}"?` : `; hosts are: ${known.join(', ')}`}`;
}

export function crossReferenceIssues(raw: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const root = obj(raw);
  if (!root) return issues;
  const hosts = obj(root.hosts);
  const hostNames = hosts ? Object.keys(hosts) : [];
  const others = obj(root.targets);
  const otherNames = others ? Object.keys(others) : [];
  const allNames = [...hostNames, ...otherNames];
  if (allNames.length === 0 && (hosts || others || root.inventory === undefined))
    issues.push({ path: hosts ? 'hosts' : '', message: 'at least one host (or target) is required' });
  for (const n of otherNames)
    if (hosts && has(hosts, n))
      issues.push({
        path: `targets.${n}`,
        message: `"${n}" is also a host; hosts and targets share one set of names`,
      });

  if (hosts) {
    const defaultJump = str(obj(obj(root.defaults)?.ssh)?.jump);
    const jumpOf = (n: string): string | undefined => {
      // Same merge as resolveSsh: the host's own ssh settings over defaults.ssh.
      return str(obj(obj(hosts[n])?.ssh)?.jump) ?? defaultJump;
    };
    for (const name of hostNames) {
      const jump = jumpOf(name);
      if (jump === undefined) continue;
      const path = `hosts.${name}.ssh.jump`;
      if (!has(hosts, jump)) issues.push({ path, message: unknownHost(jump, hostNames) });
      else if (jump === name) issues.push({ path, message: 'a host cannot be its own jump host' });
      else if (jumpOf(jump) !== undefined)
        issues.push({
          path,
          message: `jump host "${jump}" itself uses a jump host; only one hop is supported`,
        });
    }
  }

  const stages = root.stages;
  if (Array.isArray(stages)) {
    const list = stages.map((s) => {
      const st = obj(s);
      const members = Array.isArray(st?.hosts)
        ? st.hosts.filter((h): h is string => typeof h === 'string')
        : [];
      return { st, name: str(st?.name), members, rawHosts: Array.isArray(st?.hosts) ? st.hosts : [] };
    });
    list.forEach(({ st, name, members, rawHosts }, i) => {
      if (!st) return;
      // Plain names are checked here, with a suggestion; globs and label selectors once targets are resolved.
      rawHosts.forEach((h, j) => {
        if (typeof h === 'string' && !isPattern(h) && !allNames.includes(h))
          issues.push({ path: `stages.${i}.hosts.${j}`, message: unknownHost(h, allNames) });
      });
      const on = str(obj(st.tests)?.on);
      if (on !== undefined && on !== 'runner' && !members.includes(on)) {
        issues.push({
          path: `stages.${i}.tests.on`,
          message: `expected "runner" or a host of stage "${name ?? i}" (${members.join(', ')}), got "${on}"`,
        });
      }
    });
    const seenStage = new Set<string>();
    const hostStage = new Map<string, string>();
    list.forEach(({ name, members }, i) => {
      if (name === undefined) return;
      if (seenStage.has(name))
        issues.push({ path: `stages.${i}.name`, message: `stage "${name}" is declared twice` });
      seenStage.add(name);
      // Named twice; a target a selector puts in two stages is found once the targets are resolved.
      for (const h of members.filter((m) => !isPattern(m))) {
        const other = hostStage.get(h);
        if (other !== undefined)
          issues.push({
            path: `stages.${i}.hosts`,
            message: `host "${h}" is already in stage "${other}"; a host belongs to one stage`,
          });
        hostStage.set(h, name);
      }
    });
    list.forEach(({ name }, i) => {
      if (name !== undefined && RESERVED_STAGE_NAMES.includes(name))
        issues.push({
          path: `stages.${i}.name`,
          message: `"${name}" is a phase name; choose another stage name`,
        });
    });
  } else if (stages === undefined) {
    const on = obj(root.tests)?.on;
    if (typeof on === 'string' && on !== 'runner' && obj(hosts?.[on])?.stage !== 'staging')
      issues.push({
        path: 'tests.on',
        message: `tests run on "runner" or a staging host; ${JSON.stringify(on)} is not one${hostNames.includes(on) ? '' : ` (${unknownHost(on, hostNames)})`}`,
      });
    for (const name of hostNames) {
      if (obj(hosts?.[name])?.stage === undefined)
        issues.push({
          path: `hosts.${name}.stage`,
          message: 'no "stages" are declared, so every host needs "stage: staging | production | public"',
        });
    }
    for (const name of otherNames) {
      if (obj(others?.[name])?.stage === undefined)
        issues.push({
          path: `targets.${name}.stage`,
          message: 'no "stages" are declared, so every target needs "stage: staging | production | public"',
        });
    }
  }

  if (Array.isArray(stages) && root.tests !== undefined)
    issues.push({
      path: 'tests',
      message: 'with "stages" declared, tests belong to a stage: move them to stages.<n>.tests',
    });

  const keys = obj(root.secrets)?.keys;
  if (Array.isArray(keys)) {
    const dup = keys.filter((k, i) => typeof k === 'string' && keys.indexOf(k) !== i);
    if (dup.length)
      issues.push({ path: 'secrets.keys', message: `duplicate keys: ${[...new Set(dup)].join(', ')}` });
  }
  return issues;
}
