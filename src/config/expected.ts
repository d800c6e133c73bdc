import type { z } from 'zod';

/**
 * What a key of the config expects, read from the schema itself, so a message can say "expected an integer from 1
 * to 65535" instead of zod's "expected number". Reads zod's definitions defensively: a shape it does not know
 * yields undefined and the caller falls back to zod's own wording.
 */

type PathKey = string | number;
type Schema = z.core.$ZodType;
type Def = Record<string, unknown> & { type: string; checks?: { _zod: { def: CheckDef } }[] };
type CheckDef = Record<string, unknown> & { check: string };

const defOf = (s: Schema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;
const descriptionOf = (s: Schema): string | undefined =>
  (s as unknown as { description?: string }).description;
const accepts = (s: Schema, v: unknown): boolean =>
  (s as unknown as { safeParse(v: unknown): { success: boolean } }).safeParse(v).success;

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'nonoptional', 'catch']);

/** The schema node at a path of the file, and the description (`.describe(...)`) met on the way, if any. */
export function schemaAt(
  schema: Schema,
  p: readonly PathKey[],
): { node?: Schema; description?: string } | undefined {
  let node = schema;
  let description = descriptionOf(node);
  for (let i = 0; ;) {
    const def = defOf(node);
    if (WRAPPERS.has(def.type)) {
      node = def.innerType as Schema;
      description = descriptionOf(node) ?? description;
      continue;
    }
    if (i === p.length) return { node, description };
    if (def.type === 'pipe') {
      // A transform's input sits at the same path; only the end of the path keeps the pipe (see expectation).
      node = def.in as Schema;
      continue;
    }
    const key = p[i];
    let next: Schema | undefined;
    switch (def.type) {
      case 'object':
        next = (def.shape as Record<string, Schema>)[String(key)];
        break;
      case 'record':
        next = def.valueType as Schema;
        break;
      case 'array':
        next = typeof key === 'number' ? (def.element as Schema) : undefined;
        break;
      case 'union':
        // The first option that has something at this key (e.g. `status: 200 | [200, 204]` at index 0).
        next = (def.options as Schema[])
          .map((o) => schemaAt(o, p.slice(i))?.node)
          .find((n): n is Schema => n !== undefined);
        if (next) return { node: next, description };
        return undefined;
    }
    if (!next) return undefined;
    node = next;
    description = descriptionOf(node) ?? description;
    i++;
  }
}

/** "an integer from 1 to 65535", "a duration such as ...", `one of "a", "b"`; undefined when unknown. */
export function expectation(schema: Schema): string | undefined {
  const def = defOf(schema);
  const checks = (def.checks ?? []).map((c) => c._zod.def);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
    case 'catch':
      return expectation(def.innerType as Schema);
    case 'pipe':
      // Durations and sizes are strings turned into numbers by a transform; what they accept says which they are.
      if (accepts(schema, '30s')) return 'a duration such as "30s", "5m" or "250ms"';
      if (accepts(schema, '10GB')) return 'a size such as "10GB" or "512MiB"';
      return expectation(def.in as Schema);
    case 'string': {
      const regex = checks.find((c) => c.check === 'string_format' && c.format === 'regex');
      if (regex) {
        const custom = customMessage(regex);
        if (custom) return custom.replace(/^expected /, '');
        return `text matching ${String(regex.pattern)}`;
      }
      const min = checks.find((c) => c.check === 'min_length');
      return min && Number(min.minimum) === 1 ? 'a non-empty string' : 'a string';
    }
    case 'number':
      return numberExpectation(checks);
    case 'boolean':
      return 'a boolean (true or false)';
    case 'literal':
      return (def.values as unknown[]).map((v) => JSON.stringify(v)).join(' or ');
    case 'enum':
      return `one of ${Object.values(def.entries as Record<string, unknown>)
        .map((v) => JSON.stringify(v))
        .join(', ')}`;
    case 'array': {
      const each = expectation(def.element as Schema);
      const plural: Record<string, string> = {
        'an integer': 'integers',
        'a number': 'numbers',
        'a string': 'strings',
        'a non-empty string': 'non-empty strings',
      };
      const min = checks.find((c) => c.check === 'min_length');
      const list = min && Number(min.minimum) >= 1 ? 'a non-empty list' : 'a list';
      return each && plural[each] ? `${list} of ${plural[each]}` : list;
    }
    case 'object':
    case 'record':
      return 'a mapping of keys to values';
    case 'union': {
      const parts = [...new Set((def.options as Schema[]).map(expectation))];
      if (parts.some((p) => p === undefined)) return undefined;
      return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} or ${parts[parts.length - 1]}`;
    }
    default:
      return undefined;
  }
}

function numberExpectation(checks: CheckDef[]): string {
  const int = checks.some((c) => c.check === 'number_format' && /int/.test(String(c.format)));
  const what = int ? 'an integer' : 'a number';
  const lo = checks.find((c) => c.check === 'greater_than');
  const hi = checks.find((c) => c.check === 'less_than');
  if (lo && hi && lo.inclusive && hi.inclusive)
    return `${what} from ${String(lo.value)} to ${String(hi.value)}`;
  const bounds = [
    lo && `${lo.inclusive ? '>=' : '>'} ${String(lo.value)}`,
    hi && `${hi.inclusive ? '<=' : '<'} ${String(hi.value)}`,
  ].filter(Boolean);
  return bounds.length ? `${what} ${bounds.join(' and ')}` : what;
}

/** The message a check was declared with (`.regex(re, "expected ...")`), if it has a fixed one. */
function customMessage(check: CheckDef): string | undefined {
  if (typeof check.error !== 'function') return undefined;
  try {
    const m: unknown = (check.error as (issue: unknown) => unknown)({});
    if (typeof m === 'string') return m;
    if (m && typeof m === 'object' && typeof (m as { message?: unknown }).message === 'string')
      return (m as { message: string }).message;
  } catch {
    // A message built from the issue cannot be read without one; zod's wording is used instead.
  }
  return undefined;
}
