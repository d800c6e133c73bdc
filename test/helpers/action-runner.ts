import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ActionRun {
  code: number | null;
  stdout: string;
  outputs: Record<string, string>;
  summary: string;
  state: Record<string, string>;
}

/** Parses the runner's file-command format: `name<<delimiter\nvalue\ndelimiter` (and plain name=value). */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^=<]+)<<(.+)$/.exec(lines[i]);
    if (m) {
      const end = lines.indexOf(m[2], i + 1);
      out[m[1]] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (lines[i].includes('=')) {
      const [k, ...v] = lines[i].split('=');
      out[k] = v.join('=');
    }
  }
  return out;
}

/**
 * The bundles under test: dist/ as committed, or HD_DIST_DIR (a directory with index.js and cli/index.js built by
 * ncc from the sources, laid out as dist/ is) to test sources before dist/ is rebuilt.
 */
export const DIST_DIR = process.env.HD_DIST_DIR || path.join(__dirname, '..', '..', 'dist');

/** Runs dist/index.js the way the Actions runner does: INPUT_* variables and file commands. */
export async function runAction(
  inputs: Record<string, string>,
  env: NodeJS.ProcessEnv = {},
  state: Record<string, string> = {},
): Promise<ActionRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-action-'));
  const files = {
    GITHUB_OUTPUT: 'output',
    GITHUB_STEP_SUMMARY: 'summary',
    GITHUB_STATE: 'state',
    GITHUB_ENV: 'env',
    GITHUB_PATH: 'path',
  };
  for (const f of Object.values(files)) fs.writeFileSync(path.join(dir, f), '');
  const inputEnv = Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]),
  );
  const stateEnv = Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v]));
  const child = spawn(process.execPath, [path.join(DIST_DIR, 'index.js')], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUNNER_TEMP: dir,
      GITHUB_ACTIONS: 'true',
      ...Object.fromEntries(Object.entries(files).map(([k, f]) => [k, path.join(dir, f)])),
      ...inputEnv,
      ...stateEnv,
      ...env,
    },
  });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stdout += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    code,
    stdout,
    outputs: parseFileCommands(read('output')),
    summary: read('summary'),
    state: parseFileCommands(read('state')),
  };
}
