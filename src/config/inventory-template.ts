/**
 * An inventory entry's template: target fields whose text holds `{{row.<key>}}` placeholders, rendered once per
 * row with that row's values. Other placeholders (`{{host.address}}`, ...) are left for the run to fill.
 */

const ROW_PLACEHOLDER = /\{\{\s*row\.([^{}\s]+)\s*\}\}/g;

export interface TemplateUse {
  /** The key the placeholder names, after `row.`. */
  key: string;
  /** Where the text holding it sits in the template. */
  path: (string | number)[];
}

/** Every `{{row.<key>}}` of a template, with the path of the text that holds it. */
export function rowPlaceholders(template: unknown): TemplateUse[] {
  const uses: TemplateUse[] = [];
  const walk = (v: unknown, p: (string | number)[]) => {
    if (typeof v === 'string') {
      for (const m of v.matchAll(ROW_PLACEHOLDER)) uses.push({ key: m[1], path: p });
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(template, []);
  return uses;
}

/**
 * The template filled with one row's values. A text that held a placeholder is handed to `coerce` with its field
 * path once filled, so `port: "{{row.port}}"` gives a number; the names that have no value in the row are listed
 * instead (the text is then left out).
 */
export function renderRow(
  template: Record<string, unknown>,
  values: ReadonlyMap<string, string>,
  coerce: (path: readonly (string | number)[], text: string) => unknown,
): { value: Record<string, unknown>; missing: TemplateUse[] } {
  const missing: TemplateUse[] = [];
  const render = (v: unknown, p: (string | number)[]): unknown => {
    if (typeof v === 'string') {
      if (!v.includes('{{')) return v;
      let used = false;
      const text = v.replace(ROW_PLACEHOLDER, (whole, key: string) => {
        used = true;
        const value = values.get(key);
        if (value === undefined) {
          missing.push({ key, path: p });
          return whole;
        }
        return value;
      });
      return used ? coerce(p, text) : text;
    }
    if (Array.isArray(v)) return v.map((x, i) => render(x, [...p, i]));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) put(out, k, render(x, [...p, k]));
      return out;
    }
    return v;
  };
  return { value: render(template, []) as Record<string, unknown>, missing };
}

/** Sets a key, `__proto__` included as a plain key: a row must not change what an object inherits. */
export function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `over` laid over `base`: mappings merge key by key, anything else (text, numbers, lists) replaces. Neither input
 * is changed; parts neither side changes are shared with `base` (nothing writes to a parsed config).
 */
export function overlay(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isMapping(base) || !isMapping(over)) return over;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(base)) put(out, k, base[k]);
  for (const k of Object.keys(over))
    put(out, k, Object.prototype.hasOwnProperty.call(base, k) ? overlay(base[k], over[k]) : over[k]);
  return out;
}

/** Whether a value is present at a path of nested mappings and lists. */
export function hasPath(root: unknown, p: readonly (string | number)[]): boolean {
  let cur: unknown = root;
  for (const k of p) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, k))
      return false;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return true;
}
