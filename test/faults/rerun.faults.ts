import { all, cell, fail, HOSTS, sleep, statusProblems, type Cell } from './harness';

/**
 * The CLI is killed with SIGKILL (the runner lost, the job killed) half way; the next run finds what it left
 * (a lock whose owner is gone, a half-uploaded release, a host between releases, a command still running), says
 * so in its report, and deploys normally. Locks go stale after 4 s here and may be taken over.
 */

const STALE = (t: string) =>
  t.replace('lock: { stale_after: 30s }', 'lock: { stale_after: 4s, takeover_stale: true }');

/**
 * `repaired`: what the re-run's report must say it repaired on rtx1080 (its pre-flight's `repaired` detail), as
 * patterns: the killed run's processes, its upload, its env temp file, its unfinished deploy.
 */
async function rerun(
  c: Cell,
  killed: Awaited<ReturnType<Cell['finish']>>,
  repaired: RegExp[] = [],
): Promise<void> {
  const problems: string[] = [];
  if (killed.exit.signal !== 'SIGKILL')
    problems.push(`the first run was not killed: ${JSON.stringify(killed.exit)}`);
  const locked = [];
  for (const h of HOSTS) if ((await c.state(h)).lock !== undefined) locked.push(h);
  // Let what the killed run held go stale (its heartbeat has stopped).
  await sleep(5500);
  const r = await c.deploy('v2');
  problems.push(...(await statusProblems(c, r, { exit: 0, status: 'success' })));
  for (const h of locked)
    if (!r.report?.audit.some((a) => a.host === h && a.action === 'lock-taken-over'))
      problems.push(
        `${h}: the killed run's lock was there; the re-run's report does not say it took it over`,
      );
  const said = String(
    r.report?.phases.find((p) => p.name === 'preflight')?.hosts.find((h) => h.host === 'rtx1080')?.detail
      ?.repaired ?? '',
  );
  for (const re of repaired)
    if (!re.test(said))
      problems.push(`rtx1080: the re-run's report does not say it ${re} (it says: "${said}")`);
  problems.push(...(await c.hostProblems(all('v2'))));
  await c.releaseHeld();
  problems.push(
    ...(await c.hostProblems(all('v2'), 0)).map((p) => `after the held command was let go: ${p}`),
  );
  fail(problems);
}

async function killWhen(c: Cell, ready: () => Promise<unknown>) {
  const run = c.start('v2');
  await ready();
  run.signal('SIGKILL');
  return c.finish(run, 'v2', 30_000);
}

cell('SIGKILL, then a re-run', 'preflight', async (c: Cell) => {
  c.commit('v2');
  c.writeConfig(STALE);
  c.faults.rtx1080.holdCommand('.homelab-deploy/lock');
  // The held lock command would take the lock for a dead run once let go: the re-run kills it.
  await rerun(c, await killWhen(c, () => c.faults.rtx1080.held('cmd')), [/killed \d+ processes/]);
});

cell('SIGKILL, then a re-run', 'secrets', async (c: Cell) => {
  c.commit('v2');
  c.writeConfig(STALE);
  // The env file's swap is SFTP requests, one round trip each: over a slow link the kill lands once the temp file
  // is there and before the rename that would make it the env file.
  await c.faults.rtx1080.slowLink(300);
  const killed = await killWhen(c, async () => {
    for (;;) {
      const r = await c.sb.exec('rtx1080', `ls ${c.path('rtx1080')}/shared/.env.tmp-* 2>/dev/null`);
      if (r.stdout.trim()) return;
      await sleep(50);
    }
  });
  c.faults.rtx1080.clearNetwork();
  await rerun(c, killed, [/removed shared\/\.env\.tmp-/]);
});

cell('SIGKILL, then a re-run', 'upload', async (c: Cell) => {
  // Many files over a slow link: the kill lands while the release is half uploaded.
  const files = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`asset-${i}.txt`, `asset ${i}\n`]));
  c.commit('v2', files);
  c.writeConfig(STALE);
  await c.faults.rtx1080.slowLink(300);
  const killed = await killWhen(c, async () => {
    for (;;) {
      const r = await c.sb.exec('rtx1080', `ls -d ${c.path('rtx1080')}/releases/.incoming-* 2>/dev/null`);
      if (r.stdout.trim()) return;
      await sleep(50);
    }
  });
  c.faults.rtx1080.clearNetwork();
  await rerun(c, killed, [/removed releases\/\.incoming-/]);
});

cell('SIGKILL, then a re-run', 'up', async (c: Cell) => {
  const v2 = c.commit('v2');
  c.writeConfig(STALE);
  c.faults.rtx1080.hold('up', v2);
  // Killed after the switch: rtx1080 is between two releases, with the killed run's `up` still running.
  await rerun(c, await killWhen(c, () => c.faults.rtx1080.held('up')), [
    /never finished/,
    /killed \d+ processes/,
  ]);
});
