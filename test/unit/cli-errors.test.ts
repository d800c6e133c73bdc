import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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
      '--json does not apply to "completion"; it is an option of run, plan, rollback, releases, status, lock status, lock release, history, merge-reports',
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
    [
      ['report'],
      '"report" needs REPORT.json: a report written by run/rollback --report-file, the action (report-file) or merge-reports',
    ],
    [['report', '/nonexistent/r.json'], 'report: /nonexistent/r.json: no such file'],
    [
      ['report', 'r.json', '--config', 'x'],
      '--config does not apply to "report"; it is an option of run, plan, validate, rollback, releases, status, lock status, lock release, history, merge-reports',
    ],
    [['completion'], '"completion" needs SHELL: bash or zsh'],
    [['completion', 'fish'], 'completion: unknown shell "fish"; expected "bash" or "zsh"'],
    [['completion', 'bash', 'zsh'], '"completion" takes at most 1 SHELL, got 2: "bash" "zsh"'],
  ])('%j', async (argv, message) => {
    expect(await cli(...argv)).toEqual({ code: 2, out: '', err: message + '\n' });
  });

  it('report: a JSON file that is not a report is named, and nothing is written', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-report-'));
    const file = `${dir}/plan.json`;
    fs.writeFileSync(file, '[{"name":"preflight"}]');
    expect(await cli('report', file, '--html', `${dir}/out.html`)).toEqual({
      code: 2,
      out: '',
      err: `report: ${file} is not a homelab-deploy report (expected "schema": 1, a "status" and "hosts", as run --report-file writes)\n`,
    });
    fs.writeFileSync(file, '{"schema": 1, "status"');
    expect((await cli('report', file)).err).toMatch(new RegExp(`^report: ${file}: cannot be read as JSON: `));
    expect(fs.readdirSync(dir)).toEqual(['plan.json']);
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

describe("the new run and rollback flags' mistakes", () => {
  it.each([
    [['run', '--skip-tests=yes'], '--skip-tests takes no value or "=force", got "yes"'],
    [['run', '--skip-tests', 'force'], '--skip-tests takes its value after "=": --skip-tests=force'],
    [['run', '--no-rollback=1'], '--no-rollback takes no value, got "1"'],
    [['run', '--yes=please'], '--yes takes no value, got "please"'],
    [
      ['run', '--release-version', 'v 1'],
      '--release-version: expected a version such as 0.4.0 (letters, digits, ".", "+", "_", "-"; at most 64), got "v 1"',
    ],
    [
      ['run', '--release-version', '1.0.'],
      '--release-version: version "1.0." cannot be part of a tag name (no "..", no trailing "." or ".lock")',
    ],
    [['run', '--release-version'], '--release-version needs a value (VERSION)'],
    [
      ['run', '--ignore-window', '--wait-window'],
      'give --ignore-window (deploy now, audited) or --wait-window (wait for the window to open), not both',
    ],
    [['plan', '--yes'], '--yes does not apply to "plan"; it is an option of run, rollback'],
    [['plan', '--no-rollback'], '--no-rollback does not apply to "plan"; it is an option of run'],
    [['rollback', '--ref', 'main'], '--ref does not apply to "rollback"; it is an option of run'],
    [['rollback', '--force'], '--force does not apply to "rollback"; it is an option of run, lock release'],
    [
      ['rollback'],
      'rollback needs --to previous (each target back to its rollback point) or --to VERSION (homelab-deploy releases lists them)',
    ],
    [
      ['rollback', '--to', 'v1;rm -rf /'],
      '--to must be "previous" or a version on record (`homelab-deploy releases` lists them), got "v1;rm -rf /"',
    ],
    [['rollback', '--to'], '--to needs a value (VERSION)'],
    [['run', '--to', 'previous'], '--to does not apply to "run"; it is an option of rollback'],
    [['history', '--html'], '--html needs a value (FILE)'],
  ])('%j', async (argv, message) => {
    expect(await cli(...argv, '--config', config)).toEqual({ code: 2, out: '', err: message + '\n' });
  });

  it('a run above checkpoint.above without a terminal and without --yes is refused before anything connects', async () => {
    const many = writeConfig(MINIMAL.replace('hosts:\n', 'checkpoint: { above: 2 }\nhosts:\n'));
    let out = '';
    let err = '';
    const io = {
      out: { write: (t: string) => (out += t) },
      err: { write: (t: string) => (err += t) },
      input: { isTTY: false, on: () => undefined, removeListener: () => undefined },
      env: { ...process.env, GITHUB_ACTIONS: undefined },
    };
    expect(await main(['run', '--config', many], io)).toBe(2);
    expect(out).toBe('');
    expect(err).toBe(
      'run: this would touch 3 targets, more than checkpoint.above (2), and there is no terminal to ask: pass --yes to confirm; nothing was touched\n',
    );
    // One target is under the checkpoint: it goes on to the deploy (and fails to resolve the ref: no git repo).
    err = '';
    expect(await main(['run', '--config', many, '--targets', 'vps', '--ref', 'no-such-ref'], io)).not.toBe(0);
    expect(err).not.toContain('checkpoint.above');
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
    [
      ['plan', '--targets', 'site-*,rtx1080'],
      `--targets: "site-*" matches no target; ${config} has thinkpad, rtx1080, vps`,
    ],
    [
      ['run', '--targets', 'region=eu'],
      `--targets: "region=eu" matches no target; ${config} has thinkpad, rtx1080, vps`,
    ],
    [
      ['rollback', '--to', 'previous', '--targets', 'thinkpd'],
      `--targets: unknown host "thinkpd" (did you mean "thinkpad"?); ${config} has thinkpad, rtx1080, vps`,
    ],
    [
      ['releases', '--targets', 'vsp'],
      `--targets: unknown host "vsp" (did you mean "vps"?); ${config} has thinkpad, rtx1080, vps`,
    ],
  ])('%j', async (argv, message) => {
    expect(await cli(...argv, '--config', config)).toEqual({ code: 2, out: '', err: message + '\n' });
  });

  it('globs and label selectors select what the engine selects', async () => {
    const labelled = writeConfig(
      MINIMAL.replace('stage: staging }', 'stage: staging, labels: { tier: lab } }').replace(
        'stage: production }',
        'stage: production, labels: { tier: lab } }',
      ),
    );
    const glob = await cli('plan', '--config', labelled, '--targets', 'rtx*', '--phase', 'production');
    expect(glob.code).toBe(0);
    expect(glob.out).toContain('1. preflight [rtx1080]');
    const label = await cli(
      'plan',
      '--config',
      labelled,
      '--targets',
      'tier=lab',
      '--phase',
      'staging,production',
    );
    expect(label.code).toBe(0);
    expect(label.out).toContain('1. preflight [thinkpad, rtx1080]');
    expect(label.out).not.toContain('vps');
    // Two label conditions joined by a comma need both; a name after them is a selector of its own.
    const both = await cli(
      'plan',
      '--config',
      labelled,
      '--targets',
      'tier=lab,stage=x,vps',
      '--phase',
      'public',
    );
    expect(both).toMatchObject({
      code: 2,
      err: `--targets: "tier=lab,stage=x" matches no target; ${labelled} has thinkpad, rtx1080, vps\n`,
    });
  });

  it('good names pass: the plan for one stage on one host', async () => {
    const r = await cli('plan', '--config', config, '--phase', 'public', '--targets', 'vps');
    expect(r.code).toBe(0);
    expect(r.out).toContain('1. preflight [vps]');
  });
});
