import * as fs from 'node:fs';
import * as path from 'node:path';

/** Small readers for verifying a host's end state from its folder; each answers without throwing. */
export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function readLink(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

export function exists(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

export function fileMode(file: string): number | undefined {
  try {
    return fs.statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
}

const TEMP_RE = /(^|[.-])tmp([.-]|$)|^\.incoming-/;

/** Names that look like a write that never finished, in the host folder and the folders a deploy writes into. */
export function leftoverTempFiles(hostDir: string, subdirs: string[]): string[] {
  const found: string[] = [];
  for (const sub of ['', ...subdirs]) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(hostDir, sub));
    } catch {
      continue;
    }
    for (const n of names) if (TEMP_RE.test(n)) found.push(path.join(sub, n));
  }
  return found;
}

/** KEY=value lines with bare, '...' (literal) or "..." (backslash escapes) values, as dotenv readers take them. */
export function parseEnvValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1);
    else if (v.length >= 2 && v.startsWith('"') && v.endsWith('"'))
      v = v.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
    out.set(m[1], v);
  }
  return out;
}

/** What differs between the values a host's env file holds and the values it should hold. */
export function envDifferences(got: Map<string, string>, want: [string, string][]): string[] {
  const problems: string[] = [];
  const wrong = want.filter(([k, v]) => got.get(k) !== v).map(([k]) => k);
  const extra = [...got.keys()].filter((k) => !want.some(([w]) => w === k));
  if (wrong.length)
    problems.push(
      `values differ or missing: ${wrong.slice(0, 3).join(', ')}${wrong.length > 3 ? ', …' : ''}`,
    );
  if (extra.length) problems.push(`unexpected keys: ${extra.slice(0, 3).join(', ')}`);
  return problems;
}
