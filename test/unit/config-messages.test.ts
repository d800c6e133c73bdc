import { loadConfig } from '../../src/config/load';
import { ConfigError, quoteValue } from '../../src/config/errors';
import { nearest } from '../../src/config/suggest';
import { writeConfig } from '../fixtures/config';

function rejected(text: string): { file: string; err: ConfigError } {
  const file = writeConfig(text);
  try {
    loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) return { file, err };
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const messageAt = (err: ConfigError, path: string) => err.issues.find((i) => i.path === path)?.message;

describe('schema errors quote the bad value and say what is expected', () => {
  it('a value of the wrong type: `port: "22x"`', () => {
    const { file, err } = rejected(`version: 1
project: app
hosts:
  a: { address: 192.0.2.1, stage: staging, ssh: { port: "22x", key: k, known_hosts: kh } }
`);
    expect(err.message).toBe(
      `1 problem in ${file}:\n  ${file}:4:57: hosts.a.ssh.port: expected an integer from 1 to 65535, got "22x"`,
    );
  });

  it('sorts problems by line, then column, whatever order they were found in', () => {
    // The schema walks its own key order (version, project, hosts), not the file's.
    const { file, err } = rejected(`hosts:
  a: { address: 192.0.2.1, ssh: { port: 0, keepalive_count: 0 }, stage: prod }
project: App
version: "1"
`);
    expect(err.message).toBe(
      [
        `5 problems in ${file}:`,
        `  ${file}:2:41: hosts.a.ssh.port: expected an integer from 1 to 65535, got 0`,
        `  ${file}:2:61: hosts.a.ssh.keepalive_count: expected an integer from 1 to 100, got 0`,
        `  ${file}:2:73: hosts.a.stage: expected one of "staging", "production", "public", got "prod"; did you mean "production"?`,
        `  ${file}:3:10: project: expected a project name of lower-case letters, digits, '-' or '_' (max 63), got "App"`,
        `  ${file}:4:10: version: expected 1, got "1"`,
      ].join('\n'),
    );
    expect(err.issues.map((i) => [i.line, i.column])).toEqual([
      [2, 41],
      [2, 61],
      [2, 73],
      [3, 10],
      [4, 10],
    ]);
  });

  it('sorts three problems of different kinds (schema order differs from the file) by line', () => {
    const { file, err } = rejected(`hosts:
  a: { address: 192.0.2.1, stage: staging, keep_releases: 0, ssh: { key: k, known_hosts: kh } }
project: App
version: 2
`);
    expect(err.message).toBe(
      [
        `3 problems in ${file}:`,
        `  ${file}:2:59: hosts.a.keep_releases: expected an integer from 1 to 100, got 0`,
        `  ${file}:3:10: project: expected a project name of lower-case letters, digits, '-' or '_' (max 63), got "App"`,
        `  ${file}:4:10: version: expected 1, got 2`,
      ].join('\n'),
    );
  });

  it('words every kind of schema issue with the value', () => {
    const long = 'x'.repeat(100);
    const { err } = rejected(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh }, deploy: { compose: { pull: "yes" } }, min_free_disk: lots }
hosts:
  a: { address: 192.0.2.1, stage: stagin, vars: { x: [1] }, ssh: { max_channels: 1.5 } }
  b: { address: "${long}!", stage: staging, snapshot: { keep: 3 } }
  Bad_Host: { address: 192.0.2.3, stage: public }
  c: { stage: public, path: }
health:
  - { http: "", expect: { status: "200" }, method: get, timeout: soon }
notify: { telegram: { token_env: T, chat_id: [] } }
metrics: { pushgateway: { url: "https://push.example.com/", job: "a b" } }
stages: []
`);
    expect(
      Object.fromEntries(err.issues.filter((i) => i.path !== 'stages').map((i) => [i.path, i.message])),
    ).toEqual({
      'defaults.deploy.compose.pull': 'expected a boolean (true or false), got "yes"',
      'defaults.min_free_disk': 'expected a size such as "10GB" or "512MiB", got "lots"',
      'hosts.a.stage':
        'expected one of "staging", "production", "public", got "stagin"; did you mean "staging"?',
      'hosts.a.vars.x': 'expected a string, a number or a boolean (true or false), got [1] (a list)',
      'hosts.a.ssh.max_channels': 'expected an integer from 2 to 64, got 1.5',
      'hosts.b.address': `expected a host name or IP address, got "${'x'.repeat(58)}…`,
      'hosts.b.snapshot':
        'a snapshot needs exactly one provider: "proxmox" or "command"; got {"keep":3} (a mapping)',
      'hosts.Bad_Host': `expected a host name of lower-case letters, digits, '-' or '_' (max 63), got "Bad_Host"`,
      'hosts.c.address': 'required key is missing (expected a host name or IP address)',
      'hosts.c.path': 'expected a string, got an empty value',
      'health.0.http': 'expected a non-empty string, got ""',
      'health.0.expect.status': 'expected an integer or a non-empty list of integers, got "200"',
      'health.0.method':
        'expected one of "GET", "HEAD", "POST", "PUT", "OPTIONS", got "get"; did you mean "GET"?',
      'health.0.timeout': 'expected a duration such as "30s", "5m" or "250ms", got "soon"',
      'notify.telegram.chat_id': 'expected a non-empty string or a number, got [] (a list)',
      'metrics.pushgateway.job': 'expected text matching /^[a-zA-Z_][a-zA-Z0-9_]*$/, got "a b"',
    });
    expect(messageAt(err, 'stages')).toBe('expected a non-empty list, got [] (a list)');
    // A host name that breaks the rule is pointed at by its key.
    expect(err.issues.find((i) => i.path === 'hosts.Bad_Host')).toMatchObject({ line: 7, column: 3 });
  });

  it('never repeats what was written where an environment variable name belongs, nor URL credentials', () => {
    const { err } = rejected(`version: 1
project: app
defaults: { ssh: { key: k, known_hosts: kh, key_env: "ghp 0123456789abcdefghij" } }
secrets: { keys: ["sk-live-0123456789"] }
hosts:
  a: { address: 192.0.2.1, stage: staging }
metrics: { pushgateway: { url: "https://user:hunter22@push.example.com/" } }
`);
    expect(err.issues.map((i) => [i.path, i.message])).toEqual([
      [
        'defaults.ssh.key_env',
        "expected an environment variable name such as SSH_KEY (name of an environment variable holding the private key), got a value of 24 characters, not shown as it may be a secret (give the variable's name, not its value)",
      ],
      [
        'secrets.keys.0',
        "expected an environment variable name such as SSH_KEY, got a value of 18 characters, not shown as it may be a secret (give the variable's name, not its value)",
      ],
      [
        'metrics.pushgateway.url',
        'credentials do not belong in the URL (it is committed and appears in errors): set username_env and password_env; got "https://***@push.example.com/"',
      ],
    ]);
    expect(err.message).not.toMatch(/hunter22|sk-live|ghp 0123/);
  });

  it('keeps the unknown-key message with the nearest key', () => {
    const { err } = rejected(`version: 1
project: app
hosts:
  a: { address: 192.0.2.1, stage: staging, ssh: { prot: 22, key: k, known_hosts: kh } }
`);
    expect(err.issues.map((i) => [i.path, i.line, i.column, i.message])).toEqual([
      ['hosts.a.ssh.prot', 4, 51, 'unknown key "prot"; did you mean "port"?'],
    ]);
  });
});

describe('quoting and suggestions', () => {
  it('quotes values as JSON, cut at 60 characters, with credentials in URLs masked', () => {
    expect(quoteValue('22x')).toBe('"22x"');
    expect(quoteValue(22)).toBe('22');
    expect(quoteValue({ a: ['http://u:p@h/'] })).toBe('{"a":["http://***@h/"]}');
    expect(quoteValue('y'.repeat(80))).toBe(`"${'y'.repeat(58)}…`);
    expect(quoteValue('y'.repeat(80))).toHaveLength(60);
    expect(quoteValue(undefined)).toBe('nothing');
  });

  it('suggests a close typo, or the one name a word abbreviates', () => {
    expect(nearest('adress', ['address', 'stage'])).toBe('address');
    expect(nearest('prod', ['staging', 'production', 'public'])).toBe('production');
    expect(nearest('pu', ['public', 'production'])).toBeUndefined();
    expect(nearest('p', ['public', 'production'])).toBeUndefined();
    expect(nearest('host', ['host.name', 'host.address'])).toBeUndefined();
  });
});
