import { all, breakHealth, cell, fail, statusProblems, type Cell } from './harness';

/**
 * The SSH session running a command dies: its sshd process is killed with SIGKILL while the command runs (or is
 * about to). The command itself lives on, as on a real host; the tool must find and kill it over a fresh
 * connection before it rolls back or releases the host, so nothing of the run goes on after it has ended.
 */

/** After the run: the report and every host; then the held command is let go and nothing may change. */
async function settle(c: Cell, problems: string[], expect: ReturnType<typeof all>): Promise<void> {
  problems.push(...(await c.hostProblems(expect)));
  await c.releaseHeld();
  problems.push(...(await c.hostProblems(expect, 0)).map((p) => `after the held command was let go: ${p}`));
  fail(problems);
}

cell('no fault (control)', 'whole run', async (c: Cell) => {
  c.commit('v2');
  const r = await c.deploy('v2');
  fail([
    ...(await statusProblems(c, r, { exit: 0, status: 'success' })),
    ...(await c.hostProblems(all('v2'))),
  ]);
});

cell('session killed', 'preflight', async (c: Cell) => {
  c.commit('v2');
  c.faults.rtx1080.holdCommand('.homelab-deploy/lock');
  const run = c.start('v2');
  await c.faults.rtx1080.killSessionOf(await c.faults.rtx1080.held('cmd'));
  const r = await c.finish(run, 'v2');
  await settle(c, await statusProblems(c, r, { exit: 1, status: 'aborted', host: 'rtx1080' }), all('v1'));
});

cell('session killed', 'secrets', async (c: Cell) => {
  c.commit('v2');
  c.faults.rtx1080.holdCommand('sftp-server');
  const run = c.start('v2');
  await c.faults.rtx1080.killSessionOf(await c.faults.rtx1080.held('cmd'));
  const r = await c.finish(run, 'v2');
  await settle(c, await statusProblems(c, r, { exit: 1, status: 'aborted', host: 'rtx1080' }), all('v1'));
});

cell('session killed', 'up', async (c: Cell) => {
  const v2 = c.commit('v2');
  c.faults.rtx1080.hold('up', v2);
  const run = c.start('v2');
  await c.faults.rtx1080.killSessionOf(await c.faults.rtx1080.held('up'));
  const r = await c.finish(run, 'v2');
  await settle(c, await statusProblems(c, r, { exit: 1, status: 'rolled_back', host: 'rtx1080' }), all('v1'));
});

cell('session killed', 'tests', async (c: Cell) => {
  const v2 = c.commit('v2');
  c.faults.thinkpad.hold('tests', v2);
  const run = c.start('v2');
  await c.faults.thinkpad.killSessionOf(await c.faults.thinkpad.held('tests'));
  const r = await c.finish(run, 'v2');
  await settle(c, await statusProblems(c, r, { exit: 1, status: 'failed' }), all('v1'));
});

cell('session killed', 'rollback', async (c: Cell) => {
  c.commit('v2');
  breakHealth(c, 'rtx1080', 'v2');
  // Production fails its health check; staging's rollback (the `up` of v1) loses its session half way.
  c.faults.thinkpad.hold('up', c.releases.v1);
  const run = c.start('v2');
  await c.faults.thinkpad.killSessionOf(await c.faults.thinkpad.held('up'));
  const r = await c.finish(run, 'v2');
  await settle(c, await statusProblems(c, r, { exit: 1, status: 'rolled_back' }), all('v1'));
});
