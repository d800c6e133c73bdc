import { validateRef } from '../../src/git/ref';
import { shExports, shQuote } from '../../src/remote/quote';
import { backoffDelay } from '../../src/pipeline/retry';
import { MIN_SECRET_LENGTH, Redactor } from '../../src/secrets/redact';
import { renderShellTemplate, renderTemplate } from '../../src/util/template';
import { killPattern } from '../../src/remote/connection';
import { parseEnvFile, quoteEnvValue, renderEnvFile } from '../../src/secrets/env-file';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

describe('refs', () => {
  it.each(['main;touch /tmp/x', '$(id)', '`id`', '-rf', '--upload-pack=x', 'a b', 'main\nid', 'x..y', ''])(
    'rejects %j',
    (ref) => {
      expect(() => validateRef(ref)).toThrow(/rejected/);
    },
  );
  it.each(['main', 'v1.2.3', 'feature/x-y_z', 'refs/heads/main', 'a'.repeat(40)])('accepts %j', (ref) => {
    expect(() => validateRef(ref)).not.toThrow();
  });
});

describe('shell quoting', () => {
  it.each(["it's", '$(id)', '`id`', 'a b\nc', '"; rm -rf / #', '\\', '--', ''])(
    'round-trips %j through a real shell',
    (v) => {
      const out = execFileSync('/bin/sh', ['-c', `printf '%s' ${shQuote(v)}`], { encoding: 'utf8' });
      expect(out).toBe(v);
    },
  );
  it('exports only valid names', () => {
    expect(() => shExports({ 'A;B': 'x' })).toThrow();
    const out = execFileSync('/bin/sh', ['-c', `${shExports({ HD_X: "a'b $c" })}\nprintf '%s' "$HD_X"`], {
      encoding: 'utf8',
    });
    expect(out).toBe("a'b $c");
  });
});

describe('backoff', () => {
  const policy = { attempts: 3, delayMs: 5000, factor: 2, maxDelayMs: 60_000, jitter: 0.2, on: [] };
  it('grows 5s → 10s → 20s without jitter at the midpoint', () => {
    expect([2, 3, 4].map((n) => backoffDelay(policy, n, () => 0.5))).toEqual([5000, 10000, 20000]);
  });
  it('stays within ±jitter and the cap', () => {
    expect(backoffDelay(policy, 2, () => 0)).toBe(4000);
    expect(backoffDelay(policy, 2, () => 1)).toBe(6000);
    expect(backoffDelay(policy, 20, () => 0.5)).toBe(60_000);
  });
});

describe('redaction', () => {
  it('masks whole values and each line of multi-line values', () => {
    const r = new Redactor();
    r.add('s3cr3t-value');
    r.add('-----BEGIN KEY-----\nline-one-secret\n-----END KEY-----');
    expect(r.redact('token=s3cr3t-value and line-one-secret')).toBe('token=*** and ***');
    expect(r.redactDeep({ a: ['x s3cr3t-value'] })).toEqual({ a: ['x ***'] });
  });

  it('masks a value shorter than 4 characters only as a whole word, and does not hand it to GitHub masking', () => {
    const r = new Redactor();
    const registered: string[] = [];
    r.subscribe((v) => registered.push(v));
    r.add('x', 'HD_SHORT');
    r.add('ab1');
    r.add('long-enough');
    expect(MIN_SECRET_LENGTH).toBe(4);
    expect(r.redact('exit x, token=x; max ab1 ab12 xab1')).toBe('exit ***, token=***; max *** ab12 xab1');
    expect(r.redact('exit code 0')).toBe('exit code 0');
    expect(r.shortLabels).toEqual(['HD_SHORT', 'a 3-character value']);
    expect(registered).toContain('long-enough');
    expect(registered).not.toContain('x');
    expect(registered).not.toContain('ab1');
  });

  it('masks the forms a value takes in env files, JSON, shell words, URLs and base64', () => {
    const v = `p$a"ss\\w'rd/+x`;
    const r = new Redactor();
    r.add(v);
    expect(r.redact(renderEnvFile({ A: v }))).toContain('A="***"');
    expect(r.redact(renderEnvFile({ A: v }, 'python-dotenv'))).toContain("A='***'");
    expect(r.redact(JSON.stringify({ v }))).toBe('{"v":"***"}');
    expect(r.redact(`echo ${shQuote(v)}`)).toBe(`echo '***'`);
    expect(r.redact(`https://x.example/?t=${encodeURIComponent(v)}`)).toBe('https://x.example/?t=***');
    const b64 = Buffer.from(v).toString('base64');
    expect(
      r.redact(`auth ${b64} / ${b64.replace(/=+$/, '')} / ${Buffer.from(v).toString('base64url')}`),
    ).toBe('auth *** / *** / ***');
    // And the forms of each line of a multi-line value.
    r.add('first-line\nsecond "line"');
    expect(r.redact(JSON.stringify({ e: 'first-line\nsecond "line"' }))).toBe('{"e":"***"}');
    expect(r.redact('log: second \\"line\\"')).toBe('log: ***');
  });
});

describe('shell templates', () => {
  const marker = path.join(os.tmpdir(), `hd-tpl-${process.pid}`);
  const hostile = [
    `$(touch ${marker})`,
    `'; touch ${marker}; '`,
    `\`touch ${marker}\``,
    `"; touch ${marker}; "`,
    `a\nb; touch ${marker}`,
    `-n`,
    `$HOME * \\ {{host.name}}`,
    `\${IFS}touch\${IFS}${marker}`,
  ];
  const sh = (script: string) => execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  afterEach(() => fs.rmSync(marker, { force: true }));

  it.each(hostile)('passes %j as literal text in every quoting context, running nothing', (value) => {
    const vars = { 'host.vars.x': value, 'host.name': 'thinkpad' };
    const cases: [string, string][] = [
      [`printf '%s|' {{host.vars.x}}`, `${value}|`],
      [`printf '%s|' "pre-{{host.vars.x}}-post"`, `pre-${value}-post|`],
      [`printf '%s|' 'pre-{{ host.vars.x }}-post'`, `pre-${value}-post|`],
      [`printf '%s|' "$(printf '%s' {{host.vars.x}})"`, `${value}|`],
      ["printf '%s|' \"`printf '%s' {{host.vars.x}}`\"", `${value}|`],
      [`printf '%s|' {{host.name}}{{host.vars.x}} x{{host.vars.x}}`, `thinkpad${value}|x${value}|`],
      [`cat <<EOF\n{{host.vars.x}} on {{host.name}}\nEOF`, `${value} on thinkpad\n`],
      [`cat <<-END\n\t{{host.vars.x}}\n\tEND\necho '{{host.name}}'`, `${value}\nthinkpad\n`],
    ];
    for (const [template, expected] of cases) {
      expect(sh(renderShellTemplate(template, vars, 'test'))).toBe(expected);
    }
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('shows why: the raw renderTemplate would have run the value', () => {
    sh(renderTemplate(`printf '%s' {{v}} >/dev/null`, { v: `$(touch ${marker})` }, 'test'));
    expect(fs.existsSync(marker)).toBe(true);
  });

  it('keeps templates without placeholders unchanged and refuses what it cannot quote', () => {
    expect(renderShellTemplate('docker compose ps', {})).toBe('docker compose ps');
    expect(() =>
      renderShellTemplate("cat <<'EOF'\n{{v}}\nEOF", { v: 'x' }, 'stages.staging.tests.run'),
    ).toThrow('stages.staging.tests.run: {{v}} stands in a quoted here-document');
    expect(() => renderShellTemplate('echo {{nope}}', { v: 'x' }, 'health check "a"')).toThrow(
      'health check "a": unknown placeholder {{nope}}; known: v',
    );
    expect(() => renderShellTemplate('echo {{v}}', { v: 'a\0b' })).toThrow('NUL byte');
  });
});

describe('kill patterns', () => {
  const matches = (re: string, cmdline: string) =>
    execFileSync(
      '/bin/sh',
      ['-c', `printf '%s' "$2" | grep -Eq -- "$1" && echo yes || echo no`, 'sh', re, cmdline],
      {
        encoding: 'utf8',
      },
    ).trim() === 'yes';

  it('match a token only as the last word of a command line', () => {
    const one = killPattern('abc', ['hd-abc-1']);
    expect(matches(one, "sh -c 'sleep 1' hd-abc-1")).toBe(true);
    expect(matches(one, "timeout -k 3 60 sh -c 'x' hd-abc-1")).toBe(true);
    expect(matches(one, "sh -c 'sleep 1' hd-abc-10")).toBe(false);
    expect(matches(one, "sh -c 'sleep 1' xhd-abc-1")).toBe(false);
    expect(matches(one, "sh -c 'hd-abc-1' other")).toBe(false);
    // The kill script's own command line contains the pattern but never matches it.
    expect(matches(one, `pkill -TERM -f ${shQuote(one)}`)).toBe(false);
    const all = killPattern('a.c');
    expect(matches(all, "sh -c 'x' hd-a.c-17")).toBe(true);
    expect(matches(all, "sh -c 'x' hd-abc-17")).toBe(false);
    expect(matches(all, "sh -c 'x' hd-a.c-17-2")).toBe(false);
    expect(matches(all, "sh -c 'x' hd-a.cx-1")).toBe(false);
  });
});

describe('env files', () => {
  it('quotes values so `$`, quotes, `#` and spaces survive, and parses back', () => {
    const values = { A: `p$a'ss "w#o=rd" x`, B: 'plain', C: '$HOME ${X}' };
    const text = renderEnvFile(values);
    expect(parseEnvFile(text)).toEqual(values);
    expect(quoteEnvValue('$HOME')).toBe(`'$HOME'`);
  });
});

describe('env file for podman-compose (python-dotenv dialect)', () => {
  const hasDotenv = (() => {
    try {
      execFileSync('python3', ['-c', 'import dotenv'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it('is read back byte for byte by the python-dotenv podman-compose uses', () => {
    if (!hasDotenv)
      throw new Error(
        'python3-dotenv is missing (it comes with podman-compose: apt-get install -y podman-compose)',
      );
    const values = {
      A: `p$a'ss "w#o=rd" x`,
      B: 'back\\slash \\n not newline',
      C: "it's  two  spaces =eq #hash",
      D: 'line1\nline2',
    };
    const file = path.join(os.tmpdir(), `hd-dotenv-${process.pid}.env`);
    fs.writeFileSync(file, renderEnvFile(values, 'python-dotenv'));
    const out = execFileSync(
      'python3',
      [
        '-c',
        'import json,sys; from dotenv import dotenv_values; print(json.dumps(dotenv_values(sys.argv[1])))',
        file,
      ],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual(values);
    expect(parseEnvFile(renderEnvFile(values, 'python-dotenv'), 'python-dotenv')).toEqual(values);
  });

  it('refuses a value python-dotenv would expand', () => {
    expect(() => renderEnvFile({ TOKEN: 'a${HOME}b' }, 'python-dotenv')).toThrow(/TOKEN contains "\$\{"/);
  });
});
