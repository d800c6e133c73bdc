import { all, breakHealth, cell, fail, HOSTS, statusProblems, type Cell, type HostName } from './harness';

/**
 * The CLI gets SIGINT (Ctrl-C) or SIGTERM (the runner cancelling the job) while a remote command runs: the
 * command is killed on the host, what was switched goes back, env files and locks are restored and released,
 * and each host is what the report says.
 */

async function cancelAt(
  c: Cell,
  sig: NodeJS.Signals,
  host: HostName,
  hold: (c: Cell) => Promise<number>,
): Promise<Awaited<ReturnType<Cell['finish']>>> {
  const run = c.start('v2');
  await hold(c);
  run.signal(sig);
  void host;
  return c.finish(run, 'v2', 60_000);
}

/**
 * A cancelled run is on record on each host it held: the host's audit log has a `cancelled` line of the run (the
 * one whose `lock-acquired` line names the v2 release), besides the release log.
 */
async function cancelRecorded(c: Cell): Promise<string[]> {
  const problems: string[] = [];
  for (const h of HOSTS) {
    const r = await c.sb.exec(h, `cat ${c.path(h)}/.homelab-deploy/audit.log 2>/dev/null`);
    const lines = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { action: string; release?: string; token?: string });
    const token = lines.find((a) => a.action === 'lock-acquired' && a.release === c.releases.v2)?.token;
    if (token && !lines.some((a) => a.action === 'cancelled' && a.token === token))
      problems.push(`${h}: the cancelled run held it, and its audit log has no "cancelled" line of that run`);
  }
  return problems;
}

async function settle(
  c: Cell,
  problems: string[],
  expect: ReturnType<typeof all>,
  report?: Parameters<Cell['hostProblems']>[2],
) {
  problems.push(...(await cancelRecorded(c)));
  // A rollback handed over to the host may still be finishing: up to 30 s for it and its lock.
  problems.push(...(await c.hostProblems(expect, 30_000, report)));
  await c.releaseHeld();
  problems.push(
    ...(await c.hostProblems(expect, 0, report)).map((p) => `after the held command was let go: ${p}`),
  );
  fail(problems);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  cell(sig, 'preflight', async (c: Cell) => {
    c.commit('v2');
    c.faults.rtx1080.holdCommand('.homelab-deploy/lock');
    const r = await cancelAt(c, sig, 'rtx1080', (x) => x.faults.rtx1080.held('cmd'));
    await settle(
      c,
      await statusProblems(c, r, { exit: 1, status: 'aborted', errorClass: 'cancelled' }),
      all('v1'),
    );
  });

  cell(sig, 'secrets', async (c: Cell) => {
    c.commit('v2');
    c.faults.rtx1080.holdCommand('sftp-server');
    const r = await cancelAt(c, sig, 'rtx1080', (x) => x.faults.rtx1080.held('cmd'));
    await settle(
      c,
      await statusProblems(c, r, { exit: 1, status: 'aborted', errorClass: 'cancelled' }),
      all('v1'),
    );
  });

  cell(sig, 'up', async (c: Cell) => {
    const v2 = c.commit('v2');
    c.faults.rtx1080.hold('up', v2);
    const r = await cancelAt(c, sig, 'rtx1080', (x) => x.faults.rtx1080.held('up'));
    // Production was switching: it goes back. Staging had passed: it stays or goes back, as the report says.
    await settle(
      c,
      await statusProblems(c, r, { exit: 1, status: ['failed', 'rolled_back'], errorClass: 'cancelled' }),
      all('v1', { thinkpad: { release: 'as-reported' } }),
      r.report,
    );
  });

  cell(sig, 'rollback', async (c: Cell) => {
    c.commit('v2');
    breakHealth(c, 'rtx1080', 'v2');
    c.faults.thinkpad.hold('up', c.releases.v1);
    const r = await cancelAt(c, sig, 'thinkpad', (x) => x.faults.thinkpad.held('up'));
    await settle(c, await statusProblems(c, r, { exit: 1, status: ['failed', 'rolled_back'] }), all('v1'));
  });
}
