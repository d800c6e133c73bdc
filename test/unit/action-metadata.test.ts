import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

const root = path.join(__dirname, '..', '..');
const action = parse(fs.readFileSync(path.join(root, 'action.yml'), 'utf8')) as {
  name: string;
  description: string;
  inputs: Record<string, { description?: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description?: string }>;
  runs: { using: string; main: string; post?: string; 'post-if'?: string };
};

function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? sources(path.join(dir, e.name))
        : e.name.endsWith('.ts')
          ? [path.join(dir, e.name)]
          : [],
    );
}

describe('action.yml', () => {
  it('runs on node24 with main and post bundles that exist in dist/', () => {
    expect(action.runs.using).toBe('node24');
    expect(fs.existsSync(path.join(root, action.runs.main))).toBe(true);
    expect(action.runs.post && fs.existsSync(path.join(root, action.runs.post))).toBe(true);
    expect(action.runs['post-if']).toBe('always()');
  });

  it('declares exactly the inputs the code reads, each described', () => {
    const read = new Set<string>();
    for (const file of sources(path.join(root, 'src'))) {
      for (const m of fs
        .readFileSync(file, 'utf8')
        .matchAll(
          /\b(?:getInput|getBooleanInput|getMultilineInput|readInput|readBooleanInput)\(\s*'([^']+)'/g,
        ))
        read.add(m[1]);
    }
    expect([...read].sort()).toEqual(Object.keys(action.inputs).sort());
    for (const [name, input] of Object.entries(action.inputs))
      expect({ name, described: (input.description ?? '').length > 10 }).toEqual({ name, described: true });
  });

  it('reads inputs only in src/action/inputs.ts', () => {
    const offenders = sources(path.join(root, 'src')).filter(
      (f) =>
        !f.endsWith(path.join('action', 'inputs.ts')) &&
        /core\.get(Boolean|Multiline)?Input\(/.test(fs.readFileSync(f, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('declares the outputs the code sets', () => {
    const main = fs.readFileSync(path.join(root, 'src/action/main.ts'), 'utf8');
    const set = new Set([...main.matchAll(/setOutput\('([^']+)'/g)].map((m) => m[1]));
    expect([...set].sort()).toEqual(Object.keys(action.outputs).sort());
    for (const o of Object.values(action.outputs)) expect(o.description).toBeTruthy();
  });

  it('documents every input and output in docs/github.md, and nothing that does not exist', () => {
    const docs = fs.readFileSync(path.join(root, 'docs/github.md'), 'utf8');
    const section = docs.slice(docs.indexOf('## The action'), docs.indexOf('## Reusable workflows'));
    const rows = [...section.matchAll(/^\| `([\w-]+)` \|/gm)].map((m) => m[1]);
    expect([...new Set(rows)].sort()).toEqual(
      [...new Set([...Object.keys(action.inputs), ...Object.keys(action.outputs)])].sort(),
    );
  });

  it('keeps lock-wait empty by default, so the config decides', () => {
    expect(action.inputs['lock-wait'].default).toBe('');
    expect(action.inputs.statuses.default).toBe('auto');
  });
});
