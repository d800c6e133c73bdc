import { all, breakHealth, cell, fail, HOSTS, statusProblems, type Cell } from './harness';

/** A slow (300 ms) or lossy (5 % each way) link to every host, for a whole deploy and for a rollback. */

function slowAll(c: Cell): Promise<void[]> {
  return Promise.all(HOSTS.map((h) => c.faults[h].slowLink(300)));
}

function stillSlow(c: Cell): string[] {
  return HOSTS.filter((h) => !c.faults[h].slowLinkRunning).map(
    (h) => `${h}: the delay program stopped during the run`,
  );
}

cell('slow link (300 ms)', 'whole run', async (c: Cell) => {
  c.commit('v2');
  await slowAll(c);
  const r = await c.deploy('v2');
  const problems = [...stillSlow(c), ...(await statusProblems(c, r, { exit: 0, status: 'success' }))];
  HOSTS.forEach((h) => c.faults[h].clearNetwork());
  fail([...problems, ...(await c.hostProblems(all('v2')))]);
});

cell('slow link (300 ms)', 'rollback', async (c: Cell) => {
  c.commit('v2');
  breakHealth(c, 'rtx1080', 'v2');
  await slowAll(c);
  const r = await c.deploy('v2');
  const problems = [...stillSlow(c), ...(await statusProblems(c, r, { exit: 1, status: 'rolled_back' }))];
  HOSTS.forEach((h) => c.faults[h].clearNetwork());
  fail([...problems, ...(await c.hostProblems(all('v1')))]);
});

cell('packet loss (5 %)', 'whole run', async (c: Cell) => {
  c.commit('v2');
  HOSTS.forEach((h) => c.faults[h].packetLoss(0.05));
  const r = await c.deploy('v2');
  const problems = await statusProblems(c, r, { exit: 0, status: 'success' });
  HOSTS.forEach((h) => c.faults[h].clearNetwork());
  fail([...problems, ...(await c.hostProblems(all('v2')))]);
});

cell('packet loss (5 %)', 'rollback', async (c: Cell) => {
  c.commit('v2');
  breakHealth(c, 'rtx1080', 'v2');
  HOSTS.forEach((h) => c.faults[h].packetLoss(0.05));
  const r = await c.deploy('v2');
  const problems = await statusProblems(c, r, { exit: 1, status: 'rolled_back' });
  HOSTS.forEach((h) => c.faults[h].clearNetwork());
  fail([...problems, ...(await c.hostProblems(all('v1')))]);
});
