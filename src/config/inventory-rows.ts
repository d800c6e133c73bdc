import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigIssue } from './errors';
import { readCsv } from './inventory-csv';
import { readSimpleYaml } from './inventory-fast-yaml';
import { YamlPositions, type PathKey } from './inventory-positions';
import { put } from './inventory-template';

/**
 * Reads one inventory file (CSV, YAML or JSON) into rows: each row's target fields, nested as the config writes
 * them, and the values its template may use. Problems found while reading (the file, its syntax, a row without a
 * name, a malformed cell) carry the file and line.
 */

export type InventoryFormat = 'csv' | 'yaml' | 'json';

export interface InventoryRow {
  /** Position among the file's rows (0-based). */
  index: number;
  /** CSV: the line the record starts on. YAML/JSON: found from the positions when a message needs it. */
  line?: number;
  name: string;
  /** Target fields, nested (`labels: {region: eu}`, `ssh: {port: 22}`), without `name`. */
  fields: Record<string, unknown>;
  /** What `{{row.<key>}}` gives: every value by its dotted key, and for CSV by its column as written. */
  values: Map<string, string>;
}

export interface CsvColumn {
  column: string;
  /** The field path the column sets; `labels` is the whole-cell `key=value;...` form. */
  path: string[];
}

export interface InventorySource {
  /** The file as messages name it (next to the config file, as the config wrote it). */
  display: string;
  format: InventoryFormat;
  rows: InventoryRow[];
  /** CSV: the header's columns. */
  columns?: CsvColumn[];
  /** YAML/JSON: positions of the file's nodes, and where the list of rows sits in it (`[]` or `['targets']`). */
  positions?: YamlPositions;
  base: PathKey[];
  problems: ConfigIssue[];
}

/** Turns a cell's text into the value the field at `path` wants (a number for ssh.port, ...). */
export type Coerce = (path: readonly (string | number)[], text: string) => unknown;

const FORMATS: Record<string, InventoryFormat> = {
  '.csv': 'csv',
  '.yml': 'yaml',
  '.yaml': 'yaml',
  '.json': 'json',
};

export function readInventory(abs: string, display: string, coerce: Coerce): InventorySource {
  const source: InventorySource = { display, format: 'yaml', rows: [], base: [], problems: [] };
  const problem = (message: string, line?: number, column?: number) => {
    source.problems.push({ file: display, path: '', line, column, message });
    return source;
  };
  const format = FORMATS[path.extname(abs).toLowerCase()];
  if (!format)
    return problem(
      `an inventory is a .csv, .json, .yml or .yaml file; cannot tell the format of ${JSON.stringify(path.basename(abs))}`,
    );
  source.format = format;
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return problem(
      code === 'ENOENT'
        ? `inventory file not found (looked for ${abs})`
        : code === 'EISDIR'
          ? 'is a directory; expected an inventory file'
          : `cannot read the inventory file (${code ?? (err as Error).message})`,
    );
  }
  if (text.trim() === '')
    return problem(
      format === 'csv'
        ? 'the inventory file is empty; expected a header row (name,...) and one row per target'
        : 'the inventory file is empty; expected a list of targets (each with a "name")',
    );
  if (format === 'csv') readCsvRows(text, source, coerce);
  else readStructuredRows(text, source);
  return source;
}

/** The field path a CSV column sets: `label.<key>` and `var.<key>` keep the key whole (it may hold dots). */
export function columnPath(column: string): string[] {
  const m = /^(labels?|vars?)\.(.+)$/.exec(column);
  if (m) return [m[1].startsWith('label') ? 'labels' : 'vars', m[2]];
  return column.split('.');
}

function readCsvRows(text: string, source: InventorySource, coerce: Coerce): void {
  const file = source.display;
  const csv = readCsv(text);
  if ('problem' in csv) {
    source.problems.push({
      file,
      path: '',
      line: csv.problem.line,
      message: `CSV syntax: ${csv.problem.message}`,
    });
    return;
  }
  const [header, ...records] = csv.records;
  const columns = header.fields.map((column) => ({ column, path: columnPath(column) }));
  source.columns = columns;
  const headerProblem = (message: string) =>
    source.problems.push({ file, path: '', line: header.line, message });
  const seen = new Set<string>();
  for (const [k, c] of columns.entries()) {
    if (c.column === '') headerProblem(`column ${k + 1} of the header has no name`);
    else if (seen.has(c.column)) headerProblem(`column "${c.column}" appears twice in the header`);
    else if (c.path.some((p) => p === ''))
      headerProblem(`column "${c.column}" is not a field path (an empty part)`);
    seen.add(c.column);
  }
  if (!seen.has('name'))
    headerProblem(
      `the header has no "name" column (every row needs the target's name); columns are: ${columns.map((c) => c.column).join(', ')}`,
    );
  if (source.problems.length > 0) return;
  if (records.length === 0) {
    headerProblem('the inventory has a header but no rows');
    return;
  }
  for (const [index, record] of records.entries()) {
    const rowProblem = (message: string) =>
      source.problems.push({ file, path: '', line: record.line, message });
    if (record.fields.length !== columns.length) {
      rowProblem(
        `the row has ${record.fields.length} field${record.fields.length === 1 ? '' : 's'} and the header ${columns.length}; a value holding a comma or a line break needs quotes`,
      );
      continue;
    }
    const fields: Record<string, unknown> = {};
    const values = new Map<string, string>();
    let name: string | undefined;
    let ok = true;
    for (let k = 0; k < columns.length; k++) {
      const cell = record.fields[k];
      // An empty cell sets nothing: the template or the defaults fill that field.
      if (cell === '') continue;
      const { column, path: p } = columns[k];
      values.set(column, cell);
      if (column === 'name') {
        name = cell;
        continue;
      }
      if (column === 'labels') {
        const pairs = labelPairs(cell);
        if (typeof pairs === 'string') {
          rowProblem(`column "labels": ${pairs}`);
          ok = false;
          continue;
        }
        for (const [key, value] of pairs) {
          // A `label.<key>` column wins over the same key here: it is the more specific of the two.
          const labels = fields.labels as Record<string, unknown> | undefined;
          if (labels && Object.prototype.hasOwnProperty.call(labels, key)) continue;
          if (setPath(fields, ['labels', key], value)) values.set(`labels.${key}`, value);
        }
        continue;
      }
      values.set(p.join('.'), cell);
      if (!setPath(fields, p, coerce(p, cell))) {
        rowProblem(
          `column "${column}" and another column set "${p[0]}" in two forms (as a whole and part by part); keep one`,
        );
        ok = false;
      }
    }
    if (name === undefined) {
      rowProblem('the row has no "name" (every row needs the target\'s name)');
      continue;
    }
    if (ok) source.rows.push({ index, line: record.line, name, fields, values });
  }
}

/** `region=eu;tier=web` → pairs, or why it is not that form. */
function labelPairs(cell: string): [string, string][] | string {
  const pairs: [string, string][] = [];
  for (const part of cell.split(';')) {
    const t = part.trim();
    if (t === '') continue;
    const eq = t.indexOf('=');
    if (eq <= 0)
      return `expected key=value pairs separated by ";" (region=eu;tier=web), got ${JSON.stringify(cell)}`;
    pairs.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
  }
  return pairs;
}

/**
 * Sets a nested field; false when the two forms of a field meet: a parent on the way is already text, or the field
 * is already a mapping of parts.
 */
function setPath(target: Record<string, unknown>, p: string[], value: unknown): boolean {
  let cur = target;
  for (let i = 0; i < p.length - 1; i++) {
    const next = Object.prototype.hasOwnProperty.call(cur, p[i]) ? cur[p[i]] : undefined;
    if (next === undefined) {
      const child = {};
      put(cur, p[i], child);
      cur = child;
    } else if (next !== null && typeof next === 'object' && !Array.isArray(next))
      cur = next as Record<string, unknown>;
    else return false;
  }
  const last = p[p.length - 1];
  const existing = Object.prototype.hasOwnProperty.call(cur, last) ? cur[last] : undefined;
  if (existing !== null && typeof existing === 'object') return false;
  put(cur, last, value);
  return true;
}

function readStructuredRows(text: string, source: InventorySource): void {
  const file = source.display;
  const positions = new YamlPositions(text);
  source.positions = positions;
  let data: unknown;
  if (source.format === 'json') {
    try {
      data = JSON.parse(text);
    } catch (err) {
      source.problems.push({
        file,
        path: '',
        ...jsonErrorPosition(err as Error, positions),
        message: `JSON syntax: ${jsonMessage(err as Error)}`,
      });
      return;
    }
  } else {
    const fast = readSimpleYaml(text);
    if (fast) data = fast.value;
    else {
      const { doc } = positions.document();
      if (doc.errors.length > 0) {
        for (const e of doc.errors)
          source.problems.push({
            file,
            path: '',
            ...positions.at(e.pos[0]),
            message: `YAML syntax: ${e.message.split('\n')[0]}`,
          });
        return;
      }
      data = doc.toJS();
    }
  }
  let list: unknown = data;
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const keys = Object.keys(data);
    if (keys.length !== 1 || keys[0] !== 'targets') {
      source.problems.push({
        file,
        path: '',
        line: 1,
        message: `expected a list of targets, or a mapping with only "targets:" holding that list; got the keys ${keys.map((k) => JSON.stringify(k)).join(', ')}`,
      });
      return;
    }
    list = (data as { targets: unknown }).targets;
    source.base = ['targets'];
  }
  if (!Array.isArray(list)) {
    source.problems.push({
      file,
      path: source.base.join('.'),
      ...positions.locate(source.base),
      message: `expected a list of targets (each a mapping with a "name"), got ${describe(list)}`,
    });
    return;
  }
  if (list.length === 0) {
    source.problems.push({
      file,
      path: source.base.join('.'),
      ...positions.locate(source.base),
      message: 'the inventory has no rows',
    });
    return;
  }
  for (const [index, row] of list.entries()) {
    const at = [...source.base, index];
    const where = (p: PathKey[] = [], key = false) => ({
      file,
      path: [...at, ...p].join('.'),
      ...positions.locate([...at, ...p], key),
    });
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      source.problems.push({
        ...where(),
        message: `expected a mapping of target fields with a "name", got ${describe(row)}`,
      });
      continue;
    }
    const { name, ...fields } = row as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') {
      source.problems.push({
        ...where(name === undefined ? [] : ['name']),
        message:
          name === undefined
            ? 'the row has no "name" (every row needs the target\'s name)'
            : `expected the target's name as text, got ${describe(name)}${typeof name === 'number' ? ' (quote it)' : ''}`,
      });
      continue;
    }
    const values = new Map<string, string>([['name', name]]);
    flatten(fields, '', values);
    source.rows.push({ index, name, fields, values });
  }
}

/** Every scalar of a row by its dotted key, for templates. */
function flatten(value: Record<string, unknown>, prefix: string, out: Map<string, string>): void {
  for (const [k, v] of Object.entries(value)) {
    const key = prefix + k;
    if (v !== null && typeof v === 'object') {
      if (!Array.isArray(v)) flatten(v as Record<string, unknown>, `${key}.`, out);
    } else if (v !== null && v !== undefined) out.set(key, String(v));
  }
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v === 'string' ? 'the text' : `the ${typeof v}`} ${JSON.stringify(v).slice(0, 60)}`;
}

/** JSON.parse's message without the copy of the file it may quote. */
function jsonMessage(err: Error): string {
  const m = /^(.*?), ".*" is not valid JSON$/s.exec(err.message);
  return (m ? m[1] : err.message).replace(/ in JSON at position \d+.*$/s, '');
}

function jsonErrorPosition(err: Error, positions: YamlPositions): { line?: number; column?: number } {
  const m = /at position (\d+)/.exec(err.message);
  if (m) return positions.at(Number(m[1]));
  const e = positions.document().doc.errors[0];
  return e ? positions.at(e.pos[0]) : {};
}
