import type { z } from 'zod';
import { schemaAt } from './expected';
import { hostSchema, targetSchema } from './schema';

/**
 * What the target fields of each kind are, read from the config schema, so an inventory row is checked by exactly
 * the rules a target written in the config is: which columns are fields, and what type a CSV cell becomes.
 */

export type InventoryKind = 'ssh' | 'runner' | 'vercel';
export const INVENTORY_KINDS: readonly InventoryKind[] = ['ssh', 'runner', 'vercel'];

type Schema = z.core.$ZodType;
type Def = Record<string, unknown> & { type: string };
const defOf = (s: Schema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The schema of one target entry of a kind (the value under `hosts.<name>` or `targets.<name>`). */
export function entrySchema(kind: InventoryKind): Schema {
  if (kind === 'ssh') return hostSchema as unknown as Schema;
  const options = defOf(targetSchema as unknown as Schema).options as Schema[];
  const found = options.find((o) => {
    const shape = defOf(o).shape as Record<string, Schema>;
    return (defOf(shape.kind).values as unknown[])[0] === kind;
  });
  if (!found) throw new Error(`no target schema for kind ${kind}`);
  return found;
}

const fieldCache = new Map<InventoryKind, Set<string>>();

/** The keys a target entry of a kind may have. */
export function fieldNames(kind: InventoryKind): Set<string> {
  let names = fieldCache.get(kind);
  if (!names) {
    names = new Set(Object.keys(defOf(entrySchema(kind)).shape as Record<string, Schema>));
    fieldCache.set(kind, names);
  }
  return names;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'nonoptional', 'catch']);

function unwrap(s: Schema): Schema {
  let node = s;
  for (;;) {
    const def = defOf(node);
    if (WRAPPERS.has(def.type)) node = def.innerType as Schema;
    else if (def.type === 'pipe') node = def.in as Schema;
    else return node;
  }
}

/** The base types a schema node accepts: string, number, boolean, array (with its element), other. */
function accepted(s: Schema): { types: Set<string>; element?: Schema } {
  const node = unwrap(s);
  const def = defOf(node);
  switch (def.type) {
    case 'union': {
      const types = new Set<string>();
      let element: Schema | undefined;
      for (const o of def.options as Schema[]) {
        const a = accepted(o);
        a.types.forEach((t) => types.add(t));
        element ??= a.element;
      }
      return { types, element };
    }
    case 'enum':
      return { types: new Set(['string']) };
    case 'literal':
      return { types: new Set((def.values as unknown[]).map((v) => typeof v)) };
    case 'array':
      return { types: new Set(['array']), element: def.element as Schema };
    case 'string':
    case 'number':
    case 'boolean':
      return { types: new Set([def.type]) };
    default:
      return { types: new Set(['other']) };
  }
}

const NUMBER_RE = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/** How text becomes a value of the type a schema node accepts; decided once per node. */
function coercerFor(s: Schema | undefined): (text: string) => unknown {
  if (!s) return (text) => text;
  const { types, element } = accepted(s);
  if (types.has('string')) return (text) => text;
  const item = types.has('array') ? coercerFor(element) : undefined;
  return (text) => {
    if (types.has('number') && NUMBER_RE.test(text)) return Number(text);
    if (types.has('boolean') && /^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
    if (item)
      return text
        .split(';')
        .map((t) => t.trim())
        .filter(Boolean)
        .map(item);
    // Anything else stays text; the schema check then says what was expected and quotes it.
    return text;
  };
}

/**
 * A CSV cell, or a template value once its placeholders are filled, as the field at `path` wants it: a number
 * for `ssh.port`, true/false for a boolean, a list split at ";" for `domains`, else the text itself.
 */
export function coerceText(kind: InventoryKind, path: readonly (string | number)[], text: string): unknown {
  // Every row of a file asks about the same few paths.
  const key = `${kind}\u0000${path.join('\u0000')}`;
  let coerce = coercers.get(key);
  if (coerce === undefined) {
    coerce = coercerFor(fieldSchema(kind, path));
    coercers.set(key, coerce);
  }
  return coerce(text);
}

const coercers = new Map<string, (text: string) => unknown>();

/** The schema of a field, or undefined for a path the schema does not have (an unknown column stays text). */
function fieldSchema(kind: InventoryKind, path: readonly (string | number)[]): Schema | undefined {
  // A column such as `constructor` or `__proto__.x` must not reach into what objects inherit.
  if (path.some((k) => typeof k === 'string' && k in Object.prototype)) return undefined;
  const node = schemaAt(entrySchema(kind), path)?.node;
  return node && (node as { _zod?: unknown })._zod ? node : undefined;
}
