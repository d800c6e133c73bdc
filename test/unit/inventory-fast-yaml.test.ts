import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { readSimpleYaml } from '../../src/config/inventory-fast-yaml';
import { MINIMAL } from '../fixtures/config';

/**
 * The fast reader must answer exactly what the full parser answers, or not at all. Each case is checked against
 * the `yaml` package itself: where the fast reader gives a value, the full parser must accept the text without
 * errors or warnings and give a value equal to it (same keys in the same order, same types, -0 and 0 told apart).
 */

const ROOT = path.join(__dirname, '..', '..');

function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

type Verdict = 'same' | 'gave up' | 'accepted invalid YAML' | 'different value';

function verdict(text: string): Verdict {
  const fast = readSimpleYaml(text);
  if (!fast) return 'gave up';
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0 || doc.warnings.length > 0) return 'accepted invalid YAML';
  return same(fast.value, doc.toJS()) ? 'same' : 'different value';
}

const SEED = `version: 1
project: app   # a comment
defaults:
  ssh: { user: deploy, key: ~/.ssh/id_ed25519, known_hosts: known_hosts, port: 22 }
  deploy:
    strategy: command
    up: "docker compose up -d"
    down: 'echo ''bye'''
hosts:
  thinkpad: { address: 192.0.2.10, stage: staging }
  rtx1080: { address: 192.0.2.11, stage: production, vars: { x: 1.5, y: true, z: ~, n: -7 } }
  vps: { address: vps.example.com, "stage": public, ssh: { port: 2222, jump: thinkpad } }
stages:
- name: one
  hosts: [thinkpad, "rtx1080", 'vps']
  tests:
    run: |
      echo hi
        indented
      done
  health:
    - { http: "http://{{host.address}}:8080/health", expect: { status: [200, 204] } }
    - command: cat x
      expect:
        output: "a\\tb\\u00e9"
-
  name: two
  hosts:
    - vps
  on_failure: rollback-stage
empty:
list: []
map: {}
`;

describe('fast YAML reader', () => {
  it.each([
    ['a config with flow mappings, block scalars and comments', SEED],
    ['the minimal test config', MINIMAL],
    ['an inventory of hosts', fs.readFileSync(path.join(ROOT, 'test/fixtures/inventory/hosts.yml'), 'utf8')],
    ['a workflow', fs.readFileSync(path.join(ROOT, 'workflows-templates/bulk-deploy.yml'), 'utf8')],
    ['a compose file', fs.readFileSync(path.join(ROOT, 'examples/compose-stack/compose.yaml'), 'utf8')],
  ])('reads %s as the full parser does', (_what, text) => {
    expect(readSimpleYaml(text)).toBeDefined();
    expect(verdict(text)).toBe('same');
  });

  it.each([
    [
      'numbers',
      ['a: 1', 'a: -0', 'a: +5', 'a: 08', 'a: 1.', 'a: .5', 'a: -1.5e+3', 'a: 12345678901234567890'],
    ],
    [
      'words that are not numbers',
      ['a: 1_000', 'a: yes', 'a: on', 'a: tRue', 'a: -x', 'a: :x', 'a: ?x', 'a: 0x'],
    ],
    ['booleans and nulls', ['a: True', 'a: FALSE', 'a: Null', 'a: ~', 'a:', 'k:\n  # only a comment']],
    [
      'quoted scalars',
      [`a: ''`, `a: 'it''s'`, 'a: "x\\"y\\\\z"', 'a: "\\u00e9\\x41\\U0001F600\\n"', "'a b': c"],
    ],
    [
      'plain scalars with indicators inside',
      ['a: b:c', 'a : b', 'a: b#c', 'a: http://x:8080/y?q=1#f', 'k: a, b'],
    ],
    [
      'flow collections',
      ['a: [b, c]', 'a: {b: }', 'a: {b:}', 'a: {"b":c}', 'a: [{b: c}, [d], []]', 'a: [a b, -1]'],
    ],
    [
      'block collections',
      ['- a: 1\n  b: 2', '-\n  a: 1', 'a:\n- b\n- c\nd: e', 'a:\n  -\n  - b', '  a: 1\n  b: 2'],
    ],
    [
      'literal block scalars',
      ['a: |\n  x\n\n\nb: 1', 'a: |-\n  x\n\n', 'a: |\n\n  x', 'a: | # c\n  x', '- |\n  x\n- y'],
    ],
    ['comments and line endings', ['a: b #c', 'a: "b" #c', 'a: b\n# c\nd: e', 'a: x\r\nb: y', '\ufeffa: 1']],
  ])('reads %s exactly', (_what, cases) => {
    for (const c of cases) expect([c, verdict(c)]).toEqual([c, 'same']);
  });

  it.each([
    ['what it does not read', ['a: 0o17', 'a: 0x1F', 'a: .inf', 'a: >\n  x', 'a: |+\n  x', 'a: |2\n  x']],
    ['more', ['a: [b, c,]', 'a: {b}', 'a: [b: c]', '- - a', 'a:\n  b\n  c', 'a: b\n  c', 'a: [b,\n c]']],
    [
      'documents and references',
      ['', '# only', '---\na: 1', '%YAML 1.2\n---\na: 1', 'a: &x 1\nb: *x', 'a: !!str 1'],
    ],
    [
      'keys it leaves to the full parser',
      ['? a\n: b', '<<: {a: 1}', '__proto__: 1', '1: a', 'true: a', '~: a'],
    ],
    [
      'invalid YAML',
      ['a: b: c', 'a: - b', '- a: 1\n   b: 2', 'a: "b"#c', 'a: 1\na: 2', '  a: 1\nb: 2', 'a: "\\q"'],
    ],
    [
      'more invalid YAML',
      ['a: x\rb: y', 'a: [- a]', 'a: {b: c} d', 'k: [a]]', 'a: @x', 'a:\tb', 'a: |\n   x\n  y'],
    ],
  ])('gives up on %s', (_what, cases) => {
    for (const c of cases) expect([c, readSimpleYaml(c)]).toEqual([c, undefined]);
  });

  it('answers what the full parser answers, or nothing, on thousands of mutated configs', () => {
    // Deterministic mutations: insert, delete or overwrite YAML's significant characters at random places.
    const pieces = [
      ' ',
      '  ',
      '\n',
      '\n  ',
      '\n- ',
      ':',
      ': ',
      '-',
      '- ',
      '#',
      ' #',
      '"',
      "'",
      '{',
      '}',
      '[',
      ']',
      ',',
    ];
    pieces.push(
      '|',
      '|-',
      '>',
      '&',
      '*',
      '!',
      '?',
      'a',
      '1',
      '0',
      '.',
      '~',
      'e',
      '\\',
      '\\n',
      'true',
      'null',
      '+',
    );
    pieces.push(
      '0x1',
      '.5',
      '1e3',
      '"\\u00e9"',
      "''",
      'é',
      '%',
      '@',
      '`',
      '<<',
      '__proto__',
      '\r\n',
      '\t',
      '---',
    );
    const seeds = [
      SEED,
      MINIMAL,
      fs.readFileSync(path.join(ROOT, 'test/fixtures/inventory/hosts.yml'), 'utf8'),
    ];
    let state = 20261201;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
    const counts: Record<Verdict, number> = {
      same: 0,
      'gave up': 0,
      'accepted invalid YAML': 0,
      'different value': 0,
    };
    const wrong: string[] = [];
    for (let n = 0; n < 6000; n++) {
      let text = seeds[Math.floor(random() * seeds.length)];
      for (let m = 1 + Math.floor(random() * 3); m > 0; m--) {
        const at = Math.floor(random() * (text.length + 1));
        const piece = pieces[Math.floor(random() * pieces.length)];
        const op = random();
        if (op < 0.4) text = text.slice(0, at) + piece + text.slice(at);
        else if (op < 0.7) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3));
        else text = text.slice(0, at) + piece + text.slice(at + piece.length);
      }
      const v = verdict(text);
      counts[v]++;
      if (v !== 'same' && v !== 'gave up' && wrong.length < 5) wrong.push(`${v}: ${JSON.stringify(text)}`);
    }
    expect(wrong).toEqual([]);
    // The comparison means something only if a good share of mutants is read, and some are refused.
    expect(counts.same).toBeGreaterThan(1500);
    expect(counts['gave up']).toBeGreaterThan(1000);
  });
});
