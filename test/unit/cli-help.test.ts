import { COMMANDS } from '../../src/cli/commands';
import { main } from '../../src/cli/main';

async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, {
    out: { write: (t: string) => (out += t) },
    err: { write: (t: string) => (err += t) },
  });
  return { code, out, err };
}

/** The long option names a help text lists under Options:, in order. */
const optionsIn = (help: string) =>
  [
    ...help
      .slice(help.indexOf('\nOptions:\n'), help.search(/\nExamples?:\n/))
      .matchAll(/^ {2}(?:-\w, | {4})--([\w-]+)/gm),
  ].map((m) => m[1]);

describe('help', () => {
  it('--help lists every command with its summary, and says where per-command help is', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    const listed = [
      ...r.out.slice(r.out.indexOf('Commands:\n')).matchAll(/^ {2}(\S+(?: (?:status|release))?) {2,}/gm),
    ].map((m) => m[1]);
    expect(listed).toEqual([
      'run',
      'plan',
      'validate',
      'rollback',
      'releases',
      'status',
      'lock status',
      'lock release',
      'history',
      'report',
      'merge-reports',
      'completion',
    ]);
    expect(r.out).toContain('3 a target needs a human (a rollback failed or its state is unknown');
    expect(r.out).toContain(
      "homelab-deploy <command> --help shows a command's usage, options and an example.",
    );
    expect(r.out).not.toContain('__complete');
  });

  it('without a command: the overview on stdout, exit 2 (as before)', async () => {
    const r = await cli();
    expect(r.code).toBe(2);
    expect(r.out).toContain('Usage: homelab-deploy <command> [options]');
  });

  it('run --help: its own usage, only its options (with its wording), an example, signals and exit codes', async () => {
    const r = await cli('run', '--help');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out.split('\n').slice(0, 5)).toEqual([
      'homelab-deploy run: deploy: pre-flight, secrets, snapshot, each stage with health checks, verify; rolls back on failure',
      '',
      'Usage:',
      '  homelab-deploy run [--config FILE] [--phase all|p1,p2] [--ref REF] [--targets h1,h2] [--lock-wait DURATION]',
      '                     [--force] [--json] [--report-file FILE] [--actor NAME]',
    ]);
    expect(r.out.split('\n')[5]).toBe(
      '                     [--yes] [--ignore-window|--wait-window] [--release-version V] [--skip-tests[=force]] [--no-rollback]',
    );
    expect(optionsIn(r.out)).toEqual([
      'config',
      'phase',
      'ref',
      'targets',
      'lock-wait',
      'force',
      'json',
      'report-file',
      'actor',
      'yes',
      'ignore-window',
      'wait-window',
      'release-version',
      'skip-tests',
      'no-rollback',
      'help',
    ]);
    expect(r.out).toContain(
      '      --force                    redeploy hosts where the release is already current (otherwise they are only',
    );
    expect(r.out).toContain(
      "      --skip-tests[=force]       skip a stage's tests this commit already passed on the same targets; =force",
    );
    expect(r.out).toContain('  -y, --yes                      confirm a run above checkpoint.above targets');
    expect(r.out).toContain(
      'Examples:\n  homelab-deploy run --phase preflight,secrets,snapshot,staging --ref main\n',
    );
    expect(r.out).toContain('Signals: the first SIGINT/SIGTERM cancels the run');
    expect(r.out).toContain('Exit codes: 0 success or partial_success');
  });

  it.each(COMMANDS.filter((c) => !c.hidden).map((c) => [c.name, c] as const))(
    '%s --help shows exactly the options that command accepts, and an example',
    async (name, command) => {
      const r = await cli(...name.split(' '), '--help');
      expect(r.code).toBe(0);
      expect(r.out.startsWith(`homelab-deploy ${name}: ${command.summary}\n`)).toBe(true);
      expect(optionsIn(r.out)).toEqual([...command.options.map((o) => o.name), 'help']);
      expect(r.out).toMatch(
        new RegExp(`\\nExamples?:\\n  (homelab-deploy ${name}|source <\\(homelab-deploy ${name})`),
      );
      // help <command> is the same text.
      expect((await cli('help', ...name.split(' '))).out).toBe(r.out);
    },
  );

  it('every option a command accepts works, and every other one is refused (the table is the truth)', async () => {
    for (const c of COMMANDS.filter((x) => !x.hidden)) {
      const accepted = new Set(c.options.map((o) => o.name));
      for (const other of [
        'shards',
        'force',
        'all',
        'metrics',
        'summary',
        'matrix',
        'phase',
        'ref',
      ] as const) {
        if (accepted.has(other)) continue;
        const r = await cli(...c.name.split(' '), `--${other}`, 'x');
        expect({ command: c.name, other, err: r.err }).toEqual({
          command: c.name,
          other,
          err: expect.stringContaining(`--${other} does not apply to "${c.name}"`),
        });
      }
    }
  });
});
