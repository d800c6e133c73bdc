import { main } from '../../src/cli/main';
import { MINIMAL, writeConfig } from '../fixtures/config';

/** The CLI in-process; none of these mistakes may get as far as a host (the config's addresses are 192.0.2.x). */
async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, {
    out: { write: (t: string) => (out += t) },
    err: { write: (t: string) => (err += t) },
    env: { ...process.env, GITHUB_ACTIONS: undefined },
  });
  return { code, out, err };
}

const config = writeConfig(MINIMAL);
const PHASES = 'preflight, secrets, snapshot, staging, production, public, verify';

describe('mistyped commands', () => {
  it.each([
    [['rnu'], 'unknown command "rnu"; did you mean "run"? (homelab-deploy --help lists the commands)'],
    [
      ['valdate'],
      'unknown command "valdate"; did you mean "validate"? (homelab-deploy --help lists the commands)',
    ],
    [
      ['merge'],
      'unknown command "merge"; did you mean "merge-reports"? (homelab-deploy --help lists the commands)',
    ],
    [['deploy'], 'unknown command "deploy" (homelab-deploy --help lists the commands)'],
    [
      ['help', 'stauts'],
      'unknown command "stauts"; did you mean "status"? (homelab-deploy --help lists the commands)',
    ],
    [
      ['lock', 'relase'],
      'unknown lock command "relase" (did you mean "lock release"?): expected "lock status" or "lock release"',
    ],
    [['lock', 'open'], 'unknown lock command "open": expected "lock status" or "lock release"'],
  ])('%j', async (argv, message) => {
    expect(await cli(...argv)).toEqual({ code: 2, out: '', err: message + '\n' });
  });
});

describe('options that do not apply to the command are errors, not ignored', () => {
  it.each([
    [['run', '--shards', '3'], '--shards does not apply to "run"; it is an option of plan'],
    [['plan', '--force'], '--force does not apply to "plan"; it is an option of run, lock release'],
    [['status', '--all'], '--all does not apply to "status"; it is an option of lock release'],
    [['run', '--metrics'], '--metrics does not apply to "run"; it is an option of history'],
    [
      ['validate', '-p', 'staging'],
      '-p (--phase) does not apply to "validate"; it is an option of run, plan',
    ],
    [
      ['lock', 'status', '--force'],
      '--force does not apply to "lock status"; it is an option of run, lock release',
    ],
    [
      ['completion', 'bash', '--json'],
      '--json does not apply to "completion"; it is an option of run, plan, status, lock status, lock release, history, merge-reports',
    ],
    [['plan', '--confg', 'x.yml'], 'unknown option --confg for "plan"; did you mean --config?'],
    [['run', '--dry-run'], 'unknown option --dry-run for "run"'],
  ])('%j', async (argv, message) => {
    expect(await cli(...argv, '--config', config)).toEqual({ code: 2, out: '', err: message + '\n' });
  });
});

describe('option values are checked and quoted as given', () => {
  it.each([
    [
      ['plan', '--shards', 'abc'],
      `--shards must be a whole number from 1 to 256 (GitHub's matrix limit), got "abc"`,
    ],
    [
      ['plan', '--shards', '2.5'],
      `--shards must be a whole number from 1 to 256 (GitHub's matrix limit), got "2.5"`,
    ],
    [
      ['plan', '--shards', '0'],
      `--shards must be a whole number from 1 to 256 (GitHub's matrix limit), got "0"`,
    ],
    [
      ['plan', '--shards=300'],
      `--shards must be a whole number from 1 to 256 (GitHub's matrix limit), got "300"`,
    ],
    [['run', '--lock-wait', 'forever'], '--lock-wait must be a duration such as 0, 30s or 5m, got "forever"'],
    [['plan', '--phase'], '--phase needs a value (SPEC)'],
    [['plan', '-t', '--json'], '-t (--targets) needs a value (LIST)'],
    [['plan', '--json=false'], '--json takes no value, got "false"'],
    [['validate', 'extra.yml'], '"validate" takes no arguments, got "extra.yml"'],
  ])('%j', async (argv, message) => {
    expect(await cli(...argv, '--config', config)).toEqual({
      code: 2,
      out: '',
      err: message + '\n',
    });
  });

  it.each([
    [['completion'], '"completion" needs SHELL: bash or zsh'],
    [['completion', 'fish'], 'completion: unknown shell "fish"; expected "bash" or "zsh"'],
    [['completion', 'bash', 'zsh'], '"completion" takes at most 1 SHELL, got 2: "bash" "zsh"'],
  ])('%j', async (argv, message) => {
    expect(await cli(...argv)).toEqual({ code: 2, out: '', err: message + '\n' });
  });

  it('a good --shards still prints the matrix', async () => {
    const r = await cli('plan', '--config', config, '--shards', '2');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(JSON.parse(r.out).include.map((s: { targets: string }) => s.targets)).toEqual([
      'thinkpad,rtx1080',
      'vps',
    ]);
  });
});

describe('phases and targets are checked against the config, with a suggestion', () => {
  it.each([
    [
      ['plan', '--phase', 'stagign'],
      `error [config]: phase "stagign" is not a phase of this config; expected "all" or some of: ${PHASES}; did you mean "staging"?`,
    ],
    [
      ['run', '--phase', 'preflight,prod'],
      `error [config]: phase "prod" is not a phase of this config; expected "all" or some of: ${PHASES}; did you mean "production"?`,
    ],
    [
      ['plan', '--phase', 'stagign,verfy'],
      `error [config]: phase "stagign", "verfy" is not a phase of this config; expected "all" or some of: ${PHASES}; did you mean "staging" for "stagign", "verify" for "verfy"?`,
    ],
    [
      ['plan', '--phase', 'xyz'],
      `error [config]: phase "xyz" is not a phase of this config; expected "all" or some of: ${PHASES}`,
    ],
    [
      ['plan', '--targets', 'thinkpd'],
      `--targets: unknown host "thinkpd" (did you mean "thinkpad"?); ${config} has thinkpad, rtx1080, vps`,
    ],
    [
      ['run', '--targets', 'vps,rtx1800,database'],
      `--targets: unknown host "rtx1800" (did you mean "rtx1080"?), unknown host "database"; ${config} has thinkpad, rtx1080, vps`,
    ],
  ])('%j', async (argv, message) => {
    expect(await cli(...argv, '--config', config)).toEqual({ code: 2, out: '', err: message + '\n' });
  });

  it('good names pass: the plan for one stage on one host', async () => {
    const r = await cli('plan', '--config', config, '--phase', 'public', '--targets', 'vps');
    expect(r.code).toBe(0);
    expect(r.out).toContain('1. preflight [vps]');
  });
});
