import { validateRef } from '../../src/git/ref';
import { shExports, shQuote } from '../../src/remote/quote';
import { backoffDelay } from '../../src/pipeline/retry';
import { Redactor } from '../../src/secrets/redact';
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
