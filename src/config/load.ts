import * as fs from 'node:fs';
import * as path from 'node:path';
import type { z } from 'zod';
import { ConfigError, quoteValue, type ConfigIssue } from './errors';
import { expectation, schemaAt } from './expected';
import { readSimpleYaml } from './inventory-fast-yaml';
import { expandInventory, type Inventory } from './inventory';
import { YamlPositions, type PathKey } from './inventory-positions';
import { configSchema, type ConfigInput } from './schema';
import { nearest } from './suggest';
import { crossReferenceIssues } from './references';
import { resolveConfig } from './resolve';
import { templateIssues } from './template-checks';
import type { Config } from './types';

/** Reads, parses, validates and resolves a config file; throws one ConfigError listing every problem. */
export function loadConfig(file: string): Config {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [
      { path: '', message: code === 'ENOENT' ? 'file not found' : `cannot read file (${code})` },
    ]);
  }
  return parseConfig(text, file, path.dirname(abs));
}

/** An issue whose position is still to be found: at its path's value, or at its key when the key is the problem. */
interface Pending {
  issue: ConfigIssue;
  keyNode?: boolean;
  /** The path as the schema gave it (record keys that look like numbers stay text); else read from `issue.path`. */
  at?: PathKey[];
}

export function parseConfig(text: string, file: string, dir: string): Config {
  // Positions cost a full parse; they are computed only when there is something to report.
  const positions = new YamlPositions(text);
  const fast = readSimpleYaml(text);
  let raw: unknown;
  if (fast) raw = fast.value;
  else {
    const { doc } = positions.document();
    if (doc.errors.length > 0) {
      throw new ConfigError(
        file,
        doc.errors.map((e) => ({
          path: '',
          ...positions.at(e.pos[0]),
          message: `YAML syntax: ${e.message.split('\n')[0]}`,
        })),
      );
    }
    raw = doc.toJS();
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [
      { path: '', line: 1, message: 'expected a mapping with "version", "project" and "hosts"' },
    ]);
  }
  const inventory = expandInventory(raw as Record<string, unknown>, file, dir);
  const place = (pending: Pending[]): ConfigIssue[] => placed(pending, positions, inventory);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const schemaIssues = parsed.error.issues.flatMap((i) => describeIssue(i, raw));
    // Cross-references do not need a valid file, so report them now too; one under a path the schema already
    // rejected would only repeat it in other words.
    const covered = (p: string) =>
      schemaIssues.some(({ issue: s }) => p === s.path || (s.path !== '' && p.startsWith(s.path + '.')));
    const refs = crossReferenceIssues(raw).filter((i) => !covered(i.path));
    throw new ConfigError(
      file,
      place([...schemaIssues, ...refs.map((issue) => ({ issue })), ...pendingOf(inventory)]),
    );
  }
  const issues: ConfigIssue[] = [];
  const notes: ConfigIssue[] = [];
  const config = resolveConfig(parsed.data as ConfigInput, file, dir, issues, notes);
  // Templates are checked for every target they are rendered for, so a typo fails here, not after staging switched.
  issues.push(...templateIssues(parsed.data as ConfigInput, config));
  const all = [...issues.map((issue) => ({ issue })), ...pendingOf(inventory)];
  if (all.length > 0) throw new ConfigError(file, place(all));
  config.notes = placeNotes(notes, positions, inventory);
  return config;
}

/**
 * Notes are placed like issues, but a note in the config file finds its line only when something reads it
 * (`validate` prints them; `plan` and `run` do not): the positions cost a second, full parse of the file.
 */
function placeNotes(
  notes: ConfigIssue[],
  positions: YamlPositions,
  inventory: Inventory | undefined,
): ConfigIssue[] {
  const inConfig = (p: PathKey[], keyNode: boolean) => positions.locate(p, keyNode);
  for (const note of notes) {
    if (inventory?.place(note, false, inConfig)) continue;
    let at: { line?: number; column?: number } | undefined;
    const where = () => (at ??= positions.locate(note.path.split('.').filter(Boolean).map(asKey)));
    for (const key of ['line', 'column'] as const)
      Object.defineProperty(note, key, { get: () => where()[key], enumerable: true, configurable: true });
  }
  return inventory ? inventory.collapse(notes) : notes;
}

const pendingOf = (inventory: Inventory | undefined): Pending[] =>
  (inventory?.issues ?? []).map((issue) => ({ issue }));

/**
 * Adds the file, line and column of each issue: in the config file at its path, or, for a target an inventory
 * made, where the inventory (or its template or defaults) wrote the value.
 */
function placed(
  pending: Pending[],
  positions: YamlPositions,
  inventory: Inventory | undefined,
): ConfigIssue[] {
  const inConfig = (p: PathKey[], keyNode: boolean) => positions.locate(p, keyNode);
  for (const { issue, keyNode = false, at } of pending) {
    if (issue.file !== undefined || issue.line !== undefined) continue;
    if (inventory?.place(issue, keyNode, inConfig)) continue;
    Object.assign(issue, positions.locate(at ?? issue.path.split('.').filter(Boolean).map(asKey), keyNode));
  }
  const issues = pending.map((p) => p.issue);
  return inventory ? inventory.collapse(issues) : issues;
}

const asKey = (k: string): PathKey => (/^\d+$/.test(k) ? Number(k) : k);

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): Pending[] {
  const p = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const valid = keysAt(configSchema, p);
    return issue.keys.map((key) => {
      const hint = nearest(key, valid);
      return {
        issue: {
          path: [...p, key].join('.'),
          message: `unknown key "${key}"${hint ? `; did you mean "${hint}"?` : valid.length ? `; valid keys: ${valid.join(', ')}` : ''}`,
        },
        keyNode: true,
        at: [...p, key],
      };
    });
  }
  if (issue.code === 'invalid_key') {
    // A record key (a host name) that breaks the naming rule: the key is the value to quote.
    const key = p[p.length - 1];
    const record = schemaAt(configSchema, p.slice(0, -1))?.node;
    const keyType =
      record && (record as unknown as { _zod: { def: { keyType?: z.core.$ZodType } } })._zod.def.keyType;
    const want = (keyType && expectation(keyType)) ?? issue.issues[0]?.message?.replace(/^expected /, '');
    return [
      {
        issue: {
          path: p.join('.'),
          message: `${want ? `expected ${want}, got` : 'invalid name'} ${quoteValue(key)}`,
        },
        keyNode: true,
        at: p,
      },
    ];
  }
  return [{ issue: { path: p.join('.'), message: issueMessage(issue, p, raw) }, at: p }];
}
/** zod's issue in the user's terms: what the key expects (from the schema) and the value it got, quoted. */
function issueMessage(issue: z.core.$ZodIssue, p: PathKey[], raw: unknown): string {
  const at = valueAt(raw, p);
  const found = schemaAt(configSchema, p);
  const want = found?.node && expectation(found.node);
  const meaning = found?.description ? ` (${found.description})` : '';
  const got = gotText(p, at.value);
  switch (issue.code) {
    case 'invalid_type':
    case 'invalid_union':
    case 'invalid_value':
      if (!at.present)
        return `required key is missing (expected ${want ?? ('expected' in issue ? String(issue.expected) : 'a value')}${meaning})`;
  }
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${want ?? withArticle(issue.expected)}${meaning}, got ${got}`;
    case 'invalid_union': {
      const branches = [
        ...new Set(
          issue.errors.flatMap((e) =>
            e.filter((i) => i.code === 'invalid_type').map((i) => withArticle(String(i.expected))),
          ),
        ),
      ];
      const alt = branches.length ? branches.join(' or ') : undefined;
      return `expected ${want ?? alt ?? 'a different value'}${meaning}, got ${got}`;
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      const hint =
        typeof at.value === 'string'
          ? nearest(
              at.value,
              issue.values.filter((v): v is string => typeof v === 'string'),
            )
          : undefined;
      const list = values.length === 1 ? values[0] : `one of ${values.join(', ')}`;
      return `expected ${list}, got ${got}${hint && hint !== at.value ? `; did you mean "${hint}"?` : ''}`;
    }
    case 'too_small':
    case 'too_big':
      return `expected ${want ?? boundText(issue)}${meaning}, got ${got}`;
    case 'invalid_format':
      if (want) return `expected ${want}${meaning}, got ${got}`;
      return `${issue.message}, got ${got}`;
    case 'custom':
    default: {
      // Custom messages written in the schema often quote the value already (got "soon"); say it once.
      const quoted = at.value !== undefined && issue.message.includes(JSON.stringify(at.value) ?? '');
      if (quoted || /\bgot\b/.test(issue.message) || !at.present) return issue.message;
      return `${issue.message}; got ${got}`;
    }
  }
}

function withArticle(t: string): string {
  const names: Record<string, string> = {
    int: 'an integer',
    number: 'a number',
    string: 'a string',
    boolean: 'a boolean (true or false)',
    array: 'a list',
    object: 'a mapping of keys to values',
    record: 'a mapping of keys to values',
  };
  return names[t] ?? t;
}

function boundText(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'too_small' && issue.code !== 'too_big') return 'a different value';
  const small = issue.code === 'too_small';
  const n = Number(small ? issue.minimum : issue.maximum);
  const op = small ? (issue.inclusive ? 'at least' : 'more than') : issue.inclusive ? 'at most' : 'less than';
  switch (issue.origin) {
    case 'string':
      return `${op} ${n} character${n === 1 ? '' : 's'}`;
    case 'array':
    case 'set':
      return `${op} ${n} item${n === 1 ? '' : 's'}`;
    default:
      return `a number ${small ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<'} ${n}`;
  }
}

/**
 * The received value as a message shows it. Keys that name an environment variable (`*_env`, secrets.keys) are
 * where a pasted secret lands by mistake, so their text is never repeated.
 */
function gotText(p: PathKey[], value: unknown): string {
  const last = String(p[p.length - 1] ?? '');
  const namesEnv = /_env$/.test(last) || (p[0] === 'secrets' && p[1] === 'keys');
  if (namesEnv && typeof value === 'string')
    return `a value of ${value.length} characters, not shown as it may be a secret (give the variable's name, not its value)`;
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return `${quoteValue(value)} (a list)`;
  if (typeof value === 'object') return `${quoteValue(value)} (a mapping)`;
  return quoteValue(value);
}

function valueAt(raw: unknown, p: PathKey[]): { present: boolean; value: unknown } {
  let cur: unknown = raw;
  for (const k of p) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, k))
      return { present: false, value: undefined };
    cur = (cur as Record<PathKey, unknown>)[k];
  }
  return { present: true, value: cur };
}

/** Valid keys of the object schema found at a path; used to suggest the nearest key for a typo. */
function keysAt(schema: z.core.$ZodType, p: PathKey[]): string[] {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'readonly':
      return keysAt(def.innerType as z.core.$ZodType, p);
    case 'pipe':
      return keysAt(def.in as z.core.$ZodType, p);
    case 'union':
      return [...new Set((def.options as z.core.$ZodType[]).flatMap((o) => keysAt(o, p)))];
    case 'object': {
      const shape = def.shape as Record<string, z.core.$ZodType>;
      if (p.length === 0) return Object.keys(shape);
      const next = shape[String(p[0])];
      return next ? keysAt(next, p.slice(1)) : [];
    }
    case 'record':
      return p.length === 0 ? [] : keysAt(def.valueType as z.core.$ZodType, p.slice(1));
    case 'array':
      return p.length === 0 ? [] : keysAt(def.element as z.core.$ZodType, p.slice(1));
    default:
      return [];
  }
}
