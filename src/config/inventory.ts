import * as path from 'node:path';
import type { ConfigIssue } from './errors';
import { coerceText, fieldNames, INVENTORY_KINDS, type InventoryKind } from './inventory-fields';
import type { PathKey, Position } from './inventory-positions';
import { columnPath, readInventory, type InventoryRow, type InventorySource } from './inventory-rows';
import { hasPath, overlay, put, renderRow, rowPlaceholders, type TemplateUse } from './inventory-template';
import { nearest } from './suggest';

/**
 * Inventory files: targets listed one per row (CSV, YAML or JSON) next to the config, with defaults and a template,
 * so a fleet of 1500 sites is not 1500 hand-written blocks. Each row becomes an entry of the config's `hosts`
 * (kind ssh) or `targets` (other kinds) before the schema check, so every rule that applies to a target written in
 * the config applies to it. A row is the entry's `defaults`, overlaid by its `template` rendered with the row's
 * values, overlaid by the row's own fields.
 *
 * Problems are reported where the value was written: a row's field in the inventory file (its line, and for CSV its
 * column), a template's or a defaults' field in the config.
 */

type Loose = Record<string, unknown>;

const isMapping = (v: unknown): v is Loose => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

interface Entry {
  index: number;
  kind: InventoryKind;
  section: 'hosts' | 'targets';
  source: InventorySource;
  defaults: Loose;
  template: Loose;
}

interface Origin {
  entry: Entry;
  row: InventoryRow;
  /** The row's own fields as they went into the entry (template-only columns removed). */
  own: Loose;
  rendered: Loose;
}

/** Finds the line of a path in the config file (its parser's positions). */
export type ConfigLocator = (p: PathKey[], keyNode: boolean) => Position;

const asKey = (k: string): PathKey => (/^\d+$/.test(k) ? Number(k) : k);

export class Inventory {
  /** Problems found while expanding: unreadable files, bad rows, names used twice, template placeholders. */
  readonly issues: ConfigIssue[] = [];
  private readonly origins = new Map<string, Origin>();
  private readonly groups = new WeakMap<ConfigIssue, string>();

  /** The number of targets the inventories added. */
  get size(): number {
    return this.origins.size;
  }

  add(section: Entry['section'], name: string, origin: Origin): void {
    this.origins.set(`${section}\u0000${name}`, origin);
  }

  originOf(section: string, name: string): Origin | undefined {
    return this.origins.get(`${section}\u0000${name}`);
  }

  /** A row as messages refer to it: `sites.csv:14`. */
  rowRef(o: { entry: Entry; row: InventoryRow }): string {
    const { file, line } = rowPosition(o.entry, o.row);
    return line === undefined ? `row "${o.row.name}" of ${file}` : `${file}:${line}`;
  }

  /**
   * When an issue is about a target an inventory made, puts it where the value came from and returns true:
   * the row in the inventory file, or the entry's template or defaults in the config.
   */
  place(issue: ConfigIssue, keyNode: boolean, locateConfig: ConfigLocator): boolean {
    if (this.origins.size === 0 || issue.file !== undefined) return false;
    const parts = issue.path.split('.');
    const section = parts[0];
    if (section !== 'hosts' && section !== 'targets') return false;
    // Names that break the naming rule may hold dots; the longest one that matches wins.
    let origin: Origin | undefined;
    let field: string[] = [];
    for (let k = parts.length; k >= 2 && !origin; k--) {
      origin = this.originOf(section, parts.slice(1, k).join('.'));
      field = parts.slice(k);
    }
    if (!origin) return false;
    const p = field.map(asKey);
    const { entry } = origin;
    for (let n = p.length; n >= 1; n--) {
      const sub = p.slice(0, n);
      const exact = keyNode && n === p.length;
      if (hasPath(origin.own, sub)) return this.atRow(issue, origin, sub, exact);
      for (const layer of ['template', 'defaults'] as const) {
        const from = layer === 'template' ? origin.rendered : entry[layer];
        if (!hasPath(from, sub)) continue;
        Object.assign(issue, locateConfig(['inventory', entry.index, layer, ...sub], exact));
        issue.message += ` (from inventory.${entry.index}.${layer}, for ${this.rowRef(origin)})`;
        this.groups.set(issue, `${entry.index}\u0000${layer}\u0000${field.join('.')}`);
        return true;
      }
    }
    // About the target itself (its name), or about a field no layer set (a required key, a note): the row.
    return this.atRow(issue, origin, p.length === 0 ? ['name'] : [], false);
  }

  /** At the row, and at the field `p` of it when given (its CSV column, its YAML key or value). */
  private atRow(issue: ConfigIssue, origin: Origin, p: PathKey[], keyNode: boolean): true {
    const { source } = origin.entry;
    issue.file = source.display;
    if (source.columns) {
      issue.line = origin.row.line;
      const column = p.length ? columnFor(source, origin.row, p.map(String)) : undefined;
      if (column) issue.message = `column "${column}": ${issue.message}`;
      return true;
    }
    Object.assign(issue, source.positions?.locate([...source.base, origin.row.index, ...p], keyNode));
    return true;
  }

  /**
   * Every row rendered from one template repeats a mistake of the template: the first is reported, with how many
   * rows share it.
   */
  collapse(issues: ConfigIssue[]): ConfigIssue[] {
    const first = new Map<string, { issue: ConfigIssue; more: number }>();
    const out: ConfigIssue[] = [];
    for (const i of issues) {
      const g = this.groups.get(i);
      if (g === undefined) {
        out.push(i);
        continue;
      }
      const seen = first.get(g);
      if (seen) seen.more++;
      else {
        first.set(g, { issue: i, more: 0 });
        out.push(i);
      }
    }
    for (const { issue, more } of first.values())
      if (more > 0) issue.message += `; likewise for ${more} more row${more === 1 ? '' : 's'}`;
    return out;
  }
}

/** The column of a CSV row that set a field path: the exact one, else the one holding it, else one inside it. */
function columnFor(source: InventorySource, row: InventoryRow, p: string[]): string | undefined {
  const columns = (source.columns ?? []).filter((c) => row.values.has(c.column));
  const same = (a: string[], b: string[], n: number) => a.slice(0, n).every((x, i) => x === b[i]);
  return (
    columns.find((c) => c.path.length === p.length && same(c.path, p, p.length)) ??
    columns.find((c) => c.path.length < p.length && same(p, c.path, c.path.length)) ??
    columns.find((c) => c.path.length > p.length && same(c.path, p, p.length))
  )?.column;
}

/** The file as messages name it: next to the config file, the way the config names that. */
function displayPath(file: string, configFile: string): string {
  return path.isAbsolute(file) ? file : path.join(path.dirname(configFile), file);
}

/**
 * Adds every inventory row to `raw` (the parsed config, before the schema check). Returns undefined when the
 * config has no inventory. Entries the schema will reject (no file, an unknown kind) are skipped: the schema
 * check reports them.
 */
export function expandInventory(raw: Loose, configFile: string, dir: string): Inventory | undefined {
  const list = raw.inventory;
  if (!Array.isArray(list)) return undefined;
  const inventory = new Inventory();
  list.forEach((e, index) => {
    if (!isMapping(e) || typeof e.file !== 'string' || e.file === '') return;
    const kind = (e.kind ?? 'ssh') as InventoryKind;
    if (!INVENTORY_KINDS.includes(kind)) return;
    if (
      (e.defaults !== undefined && !isMapping(e.defaults)) ||
      (e.template !== undefined && !isMapping(e.template))
    )
      return;
    const section = kind === 'ssh' ? 'hosts' : 'targets';
    if (raw[section] !== undefined && raw[section] !== null && !isMapping(raw[section])) return;
    const defaults = layer(e.defaults, index, 'defaults', kind, inventory.issues);
    const template = layer(e.template, index, 'template', kind, inventory.issues);
    const coerce = (p: readonly (string | number)[], text: string) => coerceText(kind, p, text);
    const source = readInventory(path.resolve(dir, e.file), displayPath(e.file, configFile), coerce);
    inventory.issues.push(...source.problems);
    const entry: Entry = { index, kind, section, source, defaults, template };
    addRows(raw, entry, inventory);
  });
  return inventory;
}

/** An entry's defaults or template, without the keys a row alone decides. */
function layer(
  value: unknown,
  index: number,
  which: 'defaults' | 'template',
  kind: InventoryKind,
  issues: ConfigIssue[],
): Loose {
  if (!isMapping(value)) return {};
  const { name, kind: k, ...rest } = value;
  if (name !== undefined)
    issues.push({
      path: `inventory.${index}.${which}.name`,
      message: `a target's name comes from its row (the "name" column or key), not from the ${which}`,
    });
  if (k !== undefined)
    issues.push({
      path: `inventory.${index}.${which}.kind`,
      message: `the kind of an inventory's targets is set once, as inventory.${index}.kind (here ${JSON.stringify(kind)})`,
    });
  return rest;
}

function addRows(raw: Loose, entry: Entry, inventory: Inventory): void {
  const { source, kind, section } = entry;
  const fields = fieldNames(kind);
  const uses = rowPlaceholders(entry.template);
  // A column only the template reads (`customer`, used as "{{row.customer}}") is an input of the template, not a
  // field of the target; any other column that is no field is a typo the schema check reports.
  const templateOnly = new Set(
    uses
      .map((u) => (source.columns ? columnPath(u.key) : u.key.split('.'))[0])
      .filter((top) => top !== 'name' && !fields.has(top)),
  );
  const coerce = (p: readonly (string | number)[], text: string) => coerceText(kind, p, text);
  const hosts = isMapping(raw.hosts) ? raw.hosts : {};
  const targets = isMapping(raw.targets) ? raw.targets : {};
  const missing = new Map<string, { use: TemplateUse; rows: InventoryRow[] }>();
  for (const row of source.rows) {
    const { value: rendered, missing: absent } = renderRow(entry.template, row.values, coerce);
    if (absent.length > 0) {
      for (const use of absent) {
        const key = `${use.key}\u0000${use.path.join('.')}`;
        const seen = missing.get(key) ?? { use, rows: [] };
        seen.rows.push(row);
        missing.set(key, seen);
      }
      continue;
    }
    const own: Loose = {};
    for (const [k, v] of Object.entries(row.fields)) if (!templateOnly.has(k) && k !== 'kind') put(own, k, v);
    if (row.fields.kind !== undefined && row.fields.kind !== kind) {
      inventory.issues.push({
        path: `${section}.${row.name}.kind`,
        message: `the kind of an inventory's targets is set once, as inventory.${entry.index}.kind (${JSON.stringify(kind)}); this row says ${JSON.stringify(row.fields.kind)}`,
      });
      inventory.add(section, row.name, { entry, row, own: { ...own, kind: row.fields.kind }, rendered });
      continue;
    }
    const clash = nameClash(row.name, hosts, targets, inventory);
    if (clash) {
      inventory.issues.push({ ...rowPosition(entry, row), path: `${section}.${row.name}`, message: clash });
      continue;
    }
    const target = overlay(overlay(entry.defaults, rendered), own) as Loose;
    // The section is made on the first row, so a config whose inventory yields nothing is not also "empty".
    if (!isMapping(raw[section])) raw[section] = {};
    put(raw[section] as Loose, row.name, kind === 'ssh' ? target : { kind, ...target });
    inventory.add(section, row.name, { entry, row, own, rendered });
  }
  for (const { use, rows } of missing.values())
    inventory.issues.push({
      path: ['inventory', entry.index, 'template', ...use.path].join('.'),
      message: missingMessage(use.key, rows, entry, inventory),
    });
}

/** The file and line of a row (for YAML and JSON, from the file's positions, computed on first use). */
function rowPosition(entry: Entry, row: InventoryRow): { file: string; line?: number } {
  const { source } = entry;
  return {
    file: source.display,
    line: row.line ?? source.positions?.locate([...source.base, row.index]).line,
  };
}

/** Why a row's name cannot be used: hosts and targets share one namespace, the config's and every inventory's. */
function nameClash(name: string, hosts: Loose, targets: Loose, inventory: Inventory): string | undefined {
  for (const section of ['hosts', 'targets'] as const) {
    const other = inventory.originOf(section, name);
    if (other)
      return `the name "${name}" is already used by the row at ${inventory.rowRef(other)}; names are unique`;
    if (has(section === 'hosts' ? hosts : targets, name))
      return `the name "${name}" is already used by ${section}.${name} in the config; hosts, targets and inventory rows share one set of names`;
  }
  return undefined;
}

function missingMessage(key: string, rows: InventoryRow[], entry: Entry, inventory: Inventory): string {
  const { source } = entry;
  const placeholder = `{{row.${key}}}`;
  const known = source.columns
    ? source.columns.map((c) => c.column)
    : [...new Set(source.rows.flatMap((r) => [...r.values.keys()]))];
  if (!known.includes(key)) {
    const hint = nearest(key, known);
    const what = source.columns ? 'column' : 'key';
    return `${placeholder}: ${source.display} has no ${what} "${key}"${hint ? `; did you mean {{row.${hint}}}?` : `; its ${what}s are: ${known.join(', ')}`}`;
  }
  const shown = rows.slice(0, 5).map((row) => inventory.rowRef({ entry, row }));
  const more = rows.length > shown.length ? ` and ${rows.length - shown.length} more` : '';
  const why = source.columns ? ' (an empty cell sets nothing)' : '';
  return `${placeholder} has no value in ${rows.length === 1 ? 'the row' : `${rows.length} rows`} at ${shown.join(', ')}${more}${why}`;
}
