import { all, cell, fail, HOSTS, statusProblems, type Cell, type RunResult } from './harness';

/**
 * N runs of the same deploy started together against the same three hosts. Without a lock wait exactly one
 * deploys and every other aborts cleanly in pre-flight, having touched nothing; with one, the others wait their
 * turn and find the release already there. Never a deadlock, never a lock of "an unknown owner".
 */

async function together(c: Cell, n: number, args: string[]): Promise<RunResult[]> {
  const runs = Array.from({ length: n }, () => c.start('v2', args));
  return Promise.all(runs.map((r) => c.finish(r, 'v2', 420_000)));
}

/** Tokens of the runs whose deploy of v2 each host's audit log records. */
async function deployers(c: Cell): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const h of HOSTS) {
    const r = await c.sb.exec(h, `cat ${c.path(h)}/.homelab-deploy/audit.log 2>/dev/null`);
    const tokens = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { action: string; release: string; token?: string })
      .filter((a) => a.action === 'deploy' && a.release === c.releases.v2)
      .map((a) => a.token ?? '?');
    out[h] = [...new Set(tokens)];
  }
  return out;
}

function noUnknownOwner(results: RunResult[]): string[] {
  return results
    .filter((r) => /unknown owner/i.test(r.report?.error?.message ?? r.output))
    .map((r) => `${r.label}: met a lock "of an unknown owner": ${r.report?.error?.message ?? ''}`);
}

for (const n of [2, 5, 20]) {
  cell(
    `${n} concurrent runs`,
    'no lock wait',
    async (c: Cell) => {
      c.commit('v2');
      const results = await together(c, n, []);
      const problems: string[] = [...noUnknownOwner(results)];
      const winners = results.filter((r) => r.exit.code === 0);
      if (winners.length !== 1)
        problems.push(
          `${winners.length} of ${n} runs succeeded, expected exactly 1; statuses: ${results.map((r) => `${r.report?.status ?? 'no report'}(${r.report?.error?.class ?? ''})`).join(', ')}`,
        );
      for (const r of results.filter((x) => x.exit.code !== 0)) {
        problems.push(
          ...(await statusProblems(c, r, { exit: 1, status: 'aborted', errorClass: 'lock-held' })),
        );
        if (r.report && r.report.phases.some((p) => p.name !== 'preflight'))
          problems.push(`${r.label}: went past pre-flight: ${r.report.phases.map((p) => p.name).join(', ')}`);
      }
      const who = await deployers(c);
      for (const h of HOSTS)
        if (who[h].length !== 1)
          problems.push(`${h}: deployed by ${who[h].length} runs (${who[h].join(', ')}), expected 1`);
      fail([...problems, ...(await c.hostProblems(all('v2')))]);
    },
    { timeoutMs: 300_000 },
  );
}

for (const n of [2, 5, 20]) {
  cell(
    `${n} concurrent runs`,
    'lock wait',
    async (c: Cell) => {
      c.commit('v2');
      // Each waiting run in turn takes the locks, finds v2 current and healthy, and leaves: 20 take a while.
      const results = await together(c, n, ['--lock-wait', n > 5 ? '300s' : '90s']);
      const problems: string[] = [...noUnknownOwner(results)];
      for (const r of results) problems.push(...(await statusProblems(c, r, { exit: 0, status: 'success' })));
      // Who deployed is read from the hosts' audit logs: a run that finds v2 already there reports the earlier
      // run's rollback point as its own (state "new") without deploying anything.
      const who = await deployers(c);
      for (const h of HOSTS)
        if (who[h].length !== 1)
          problems.push(`${h}: deployed by ${who[h].length} runs (${who[h].join(', ')}), expected 1`);
      fail([...problems, ...(await c.hostProblems(all('v2')))]);
    },
    { timeoutMs: 600_000 },
  );
}
