import { all, cell, fail, sleep, statusOf, statusProblems, type Cell } from './harness';

/**
 * The host's sshd is stopped, or its link goes down (and comes back, or not). A run on an open connection may
 * finish; a host the tool cannot reach to undo what it changed needs a human: exit 3, `unknown` in the report,
 * and `status` says so until a later deploy clears it.
 */

cell('sshd stopped', 'preflight', async (c: Cell) => {
  c.commit('v2');
  await c.faults.vps.stopSshd();
  const r = await c.deploy('v2');
  fail([
    ...(await statusProblems(c, r, { exit: 1, status: 'aborted', errorClass: 'unreachable', host: 'vps' })),
    ...(await c.hostProblems(all('v1'))),
  ]);
});

cell('sshd stopped', 'up', async (c: Cell) => {
  const v2 = c.commit('v2');
  c.faults.rtx1080.hold('up', v2);
  const run = c.start('v2');
  await c.faults.rtx1080.held('up');
  // Stopping the service leaves open sessions alone: the run goes on over the connection it has.
  await c.faults.rtx1080.stopSshd();
  c.faults.rtx1080.go();
  const r = await c.finish(run, 'v2');
  fail([
    ...(await statusProblems(c, r, { exit: 0, status: 'success' })),
    ...(await c.hostProblems(all('v2'))),
  ]);
});

cell('link down, healed', 'preflight', async (c: Cell) => {
  c.commit('v2');
  c.faults.vps.holdCommand('.homelab-deploy/lock');
  const run = c.start('v2');
  await c.faults.vps.held('cmd');
  c.faults.vps.linkDown();
  await run.waitFor(/✖ preflight failed/);
  c.faults.vps.linkUp();
  const r = await c.finish(run, 'v2');
  const problems = await statusProblems(c, r, { exit: 1, status: 'aborted', host: 'vps' });
  problems.push(...(await c.hostProblems(all('v1'))));
  // The lock command that was cut off must not take the lock now that the run is over.
  await c.releaseHeld();
  problems.push(
    ...(await c.hostProblems(all('v1'), 0)).map((p) => `after the held command was let go: ${p}`),
  );
  fail(problems);
});

cell('link down, healed', 'public (retry)', async (c: Cell) => {
  const v2 = c.commit('v2');
  c.faults.vps.hold('up', v2);
  const run = c.start('v2');
  await c.faults.vps.held('up');
  c.faults.vps.linkDown();
  await run.waitFor(/↻ vps: retrying/);
  c.faults.vps.linkUp();
  const r = await c.finish(run, 'v2');
  const problems = await statusProblems(c, r, { exit: 0, status: 'success' });
  problems.push(...(await c.hostProblems(all('v2'))));
  await c.releaseHeld();
  problems.push(...(await c.hostProblems(all('v2'), 0)).map((p) => `after the held up was let go: ${p}`));
  fail(problems);
});

cell('link down for good', 'preflight', async (c: Cell) => {
  c.commit('v2');
  c.faults.vps.linkDown();
  const r = await c.deploy('v2');
  fail([
    ...(await statusProblems(c, r, { exit: 1, status: 'aborted', host: 'vps' })),
    ...(await c.hostProblems(all('v1'))),
  ]);
});

cell('link down for good', 'production (up)', async (c: Cell) => {
  const v2 = c.commit('v2');
  c.writeConfig((t) =>
    t.replace('lock: { stale_after: 30s }', 'lock: { stale_after: 4s, takeover_stale: true }'),
  );
  c.faults.rtx1080.hold('up', v2);
  const run = c.start('v2');
  await c.faults.rtx1080.held('up');
  c.faults.rtx1080.linkDown();
  const r = await c.finish(run, 'v2');
  const problems = await statusProblems(c, r, { exit: 3, status: 'failed' });
  const rtx = r.report?.hosts.find((h) => h.host === 'rtx1080');
  if (rtx?.state !== 'unknown')
    problems.push(`report: rtx1080 is "${rtx?.state}", expected "unknown" (it could not be reached)`);
  problems.push(...(await c.hostProblems(all('v1', { rtx1080: { release: 'v1', unchecked: true } }))));
  // Back online, the host tells an operator it needs a look...
  c.faults.rtx1080.linkUp();
  const st = await statusOf(c, 'rtx1080');
  if (!st?.needsAttention)
    problems.push(`status --json: rtx1080 shows no needsAttention: ${JSON.stringify(st)?.slice(0, 300)}`);
  // ...and the next deploy repairs it: the cut-off `up` killed, the stale lock taken over, v2 everywhere.
  await sleep(5000);
  const again = await c.deploy('v2');
  problems.push(
    ...(await statusProblems(c, again, { exit: 0, status: 'success' })).map((p) => `re-run: ${p}`),
  );
  problems.push(...(await c.hostProblems(all('v2'))).map((p) => `after the re-run: ${p}`));
  const after = await statusOf(c, 'rtx1080');
  if (after?.needsAttention)
    problems.push('status --json: rtx1080 still needs attention after a good deploy');
  fail(problems);
});
