import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from './errors';
import { configSchema, type ConfigInput } from './schema';
import { nearest } from './suggest';
import { crossReferenceIssues } from './references';
import { resolveConfig } from './resolve';
import type { Config } from './types';

type PathKey = string | number;

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

export function parseConfig(text: string, file: string, dir: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          path: '',
          line: pos.line,
          column: pos.col,
          message: `YAML syntax: ${e.message.split('\n')[0]}`,
        };
      }),
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [
      { path: '', line: 1, message: 'expected a mapping with "version", "project" and "hosts"' },
    ]);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const schemaIssues = parsed.error.issues.flatMap((i) => describeIssue(i, doc, lineCounter));
    // Cross-references do not need a valid file, so report them now too; one under a path the schema already
    // rejected would only repeat it in other words.
    const covered = (p: string) =>
      schemaIssues.some((s) => p === s.path || (s.path !== '' && p.startsWith(s.path + '.')));
    const refs = crossReferenceIssues(raw).filter((i) => !covered(i.path));
    throw new ConfigError(file, [...schemaIssues, ...placed(refs, doc, lineCounter)]);
  }
  const issues: ConfigIssue[] = [];
  const notes: ConfigIssue[] = [];
  const config = resolveConfig(parsed.data as ConfigInput, file, dir, issues, notes);
  if (issues.length > 0) throw new ConfigError(file, placed(issues, doc, lineCounter));
  config.notes = placed(notes, doc, lineCounter);
  return config;
}

/** Adds the line and column of each issue's path in the file. */
function placed(issues: ConfigIssue[], doc: Document, lc: LineCounter): ConfigIssue[] {
  for (const i of issues) Object.assign(i, locate(doc, lc, i.path.split('.').filter(Boolean).map(asKey)));
  return issues;
}

const asKey = (k: string): PathKey => (/^\d+$/.test(k) ? Number(k) : k);

function describeIssue(issue: z.core.$ZodIssue, doc: Document, lc: LineCounter): ConfigIssue[] {
  const p = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const valid = keysAt(configSchema, p);
    return issue.keys.map((key) => {
      const hint = nearest(key, valid);
      return {
        path: [...p, key].join('.'),
        ...locate(doc, lc, [...p, key], true),
        message: `unknown key "${key}"${hint ? `; did you mean "${hint}"?` : valid.length ? `; valid keys: ${valid.join(', ')}` : ''}`,
      };
    });
  }
  let message = issue.message;
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
    message = `required key is missing (expected ${issue.expected})`;
  } else if (issue.code === 'invalid_value' && 'values' in issue) {
    message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return [{ path: p.join('.'), ...locate(doc, lc, p), message }];
}

/** Line/column of the node at a path (or of its key, for unknown keys); falls back to the nearest parent. */
function locate(
  doc: Document,
  lc: LineCounter,
  p: PathKey[],
  keyNode = false,
): { line?: number; column?: number } {
  for (let n = p.length; n >= 0; n--) {
    const sub = p.slice(0, n);
    let offset: number | undefined;
    if (keyNode && n === p.length && n > 0) {
      const parent = doc.getIn(sub.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === sub[sub.length - 1]);
        if (pair && isScalar(pair.key)) offset = pair.key.range?.[0];
      }
    } else {
      const node = n === 0 ? doc.contents : doc.getIn(sub, true);
      if (node && typeof node === 'object' && 'range' in node)
        offset = (node.range as [number, number, number])?.[0];
    }
    if (offset !== undefined) {
      const pos = lc.linePos(offset);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
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
