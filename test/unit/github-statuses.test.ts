import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { attempt, githubClient, type ApiOptions } from '../../src/github/api';
import {
  closeAbandoned,
  createStatusReporter,
  fitDescription,
  type OpenStatuses,
  type StatusReporterOptions,
} from '../../src/github/statuses';
import type { Report } from '../../src/report/types';

interface Call {
  method: string;
  path: string;
  body: Record<string, unknown>;
  auth?: string;
}

type Answer = { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number };

/**
 * A local stand-in for the GitHub API whose answers each test scripts. It is reached the way the action reaches
 * GitHub: through GITHUB_API_URL. Calls are recorded when they arrive, answers may be delayed.
 */
async function fakeApi(answer: (call: Call, n: number) => Answer) {
  const calls: Call[] = [];
  const answered = { n: 0 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const call = {
        method: req.method ?? '',
        path: req.url ?? '',
        body: body ? JSON.parse(body) : {},
        auth: req.headers.authorization,
      };
      calls.push(call);
      const a = answer(call, calls.length);
      setTimeout(() => {
        res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
        res.end(JSON.stringify(a.body ?? {}));
        answered.n++;
      }, a.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // A failed expectation skips a test's close(); afterEach closes what is left, so jest can exit.
  servers.add(server);
  process.env.GITHUB_API_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    calls,
    answered,
    close: () =>
      new Promise<void>((r) => {
        servers.delete(server);
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const servers = new Set<http.Server>();
afterEach(() => {
  for (const s of servers) {
    s.close();
    s.closeAllConnections();
  }
  servers.clear();
});

const savedApiUrl = process.env.GITHUB_API_URL;
afterEach(() => {
  if (savedApiUrl === undefined) delete process.env.GITHUB_API_URL;
  else process.env.GITHUB_API_URL = savedApiUrl;
});

const SHA = 'a'.repeat(40);
const STATUSES = `/repos/jjeco/homelab/statuses/${SHA}`;
function report(status: Report['status']): Report {
  return {
    schema: 1,
    project: 'homelab',
    status,
    phase: status === 'success' ? 'verify' : 'production',
    systemsDeployed: status === 'success' ? ['thinkpad', 'rtx1080'] : [],
    durationSeconds: 12,
    startedAt: '',
    finishedAt: '',
    release: { id: SHA.slice(0, 12), commit: SHA, ref: 'main' },
    run: {},
    phasesRequested: ['all'],
    error:
      status === 'success'
        ? undefined
        : { class: 'health-failed', message: 'rtx1080: app: expected status 200, got 503 '.repeat(10) },
    phases: [],
    hosts: [
      { host: 'thinkpad', stage: 'staging', before: null, after: null, state: 'none' },
      { host: 'rtx1080', stage: 'production', before: null, after: null, state: 'none' },
    ],
    audit: [],
  };
}

/** GitHub's pauses shrunk a thousandfold (a second takes a millisecond), no spacing between writes. */
const fast = { attempts: 3, unitMs: 1, writeIntervalMs: 0, timeoutMs: 2000 };
function reporter(extra: Partial<StatusReporterOptions> = {}) {
  const warnings: string[] = [];
  const open: OpenStatuses[] = [];
  const r = createStatusReporter({
    token: 'ghs_x',
    repository: 'jjeco/homelab',
    sha: SHA,
    runUrl: 'https://github.com/jjeco/homelab/actions/runs/1',
    environment: 'production',
    mode: 'commit-status',
    warn: (m) => warnings.push(m),
    onOpenChange: (o) => open.push(o),
    api: fast,
    ...extra,
  });
  return { r, warnings, open };
}

/** The states each context received, in the order GitHub received them. */
function perContext(calls: Call[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of calls) (out[String(c.body.context)] ??= []).push(String(c.body.state));
  return out;
}

describe('commit statuses against a local API (GITHUB_API_URL)', () => {
  it('a full run: pending + success per phase, then the result, on the deployed commit', async () => {
    const api = await fakeApi(() => ({ status: 201 }));
    const { r, warnings, open } = reporter();
    for (const p of ['preflight', 'staging']) {
      await r.phaseStarted(p);
      await r.phaseFinished(p, 'success', `${p} ok`);
    }
    await r.finish(report('success'));
    expect(api.calls.map((c) => [c.method, c.path, c.body.context, c.body.state])).toEqual([
      ['POST', STATUSES, 'homelab-deploy/production/preflight', 'pending'],
      ['POST', STATUSES, 'homelab-deploy/production/preflight', 'success'],
      ['POST', STATUSES, 'homelab-deploy/production/staging', 'pending'],
      ['POST', STATUSES, 'homelab-deploy/production/staging', 'success'],
      ['POST', STATUSES, 'homelab-deploy/production/result', 'success'],
    ]);
    expect(
      api.calls.every(
        (c) =>
          c.auth === 'token ghs_x' && c.body.target_url === 'https://github.com/jjeco/homelab/actions/runs/1',
      ),
    ).toBe(true);
    expect(api.calls[4].body.description).toBe(`success: 2/2 hosts on ${SHA.slice(0, 12)}`);
    expect(warnings).toEqual([]);
    // Open while running, nothing left open at the end.
    expect(open[0]).toEqual({
      mode: 'commit-status',
      sha: SHA,
      scope: 'production',
      contexts: ['preflight', 'result'],
      deploymentId: undefined,
    });
    expect(open[open.length - 1].contexts).toEqual([]);
    await api.close();
  });

  it('calls fired without waiting arrive in order per context, even when a pending is retried', async () => {
    // The first pending of each phase is slow and fails, as a GitHub hiccup would: its retry must still land
    // before that phase's success, or the check would spin forever.
    const seen = new Set<string>();
    const api = await fakeApi((c) => {
      const key = `${c.body.context}:${c.body.state}`;
      if (c.body.state === 'pending' && !seen.has(key)) {
        seen.add(key);
        return { status: 502, delayMs: 150 };
      }
      return { status: 201 };
    });
    const { r } = reporter();
    for (const p of ['preflight', 'secrets', 'staging']) {
      void r.phaseStarted(p);
      void r.phaseFinished(p, 'success', `${p} ok`);
    }
    await r.finish(report('success'));
    expect(perContext(api.calls)).toEqual({
      'homelab-deploy/production/preflight': ['pending', 'pending', 'success'],
      'homelab-deploy/production/secrets': ['pending', 'pending', 'success'],
      'homelab-deploy/production/staging': ['pending', 'pending', 'success'],
      'homelab-deploy/production/result': ['success'],
    });
    // finish returned only once every call had its answer.
    expect(api.answered.n).toBe(api.calls.length);
    await api.close();
  });

  it('a failed run: failure states with descriptions cut to 140 characters', async () => {
    const api = await fakeApi(() => ({ status: 201 }));
    const { r } = reporter({ environment: undefined });
    await r.phaseStarted('production');
    await r.phaseFinished('production', 'failure', 'health-failed: ' + 'x'.repeat(300));
    await r.finish(report('rolled_back'));
    expect(api.calls.map((c) => `${c.body.context}:${c.body.state}`)).toEqual([
      'homelab-deploy/deploy/production:pending',
      'homelab-deploy/deploy/production:failure',
      'homelab-deploy/deploy/result:failure',
    ]);
    for (const c of api.calls) expect([...String(c.body.description)].length).toBeLessThanOrEqual(140);
    expect(String(api.calls[2].body.description)).toMatch(
      /^rolled_back: 0\/2 hosts on aaaaaaaaaaaa — health-failed: .*…$/,
    );
    await api.close();
  });

  it('finish closes a phase that never ended as error, and sends again a final state lost to an outage', async () => {
    let stagingSuccessTries = 0;
    const api = await fakeApi((c) => {
      if (c.body.context === 'homelab-deploy/production/staging' && c.body.state === 'success')
        return ++stagingSuccessTries <= fast.attempts ? { status: 500 } : { status: 201 };
      return { status: 201 };
    });
    const { r, warnings, open } = reporter();
    await r.phaseStarted('staging');
    await r.phaseFinished('staging', 'success', 'staging ok');
    await r.phaseStarted('production'); // the engine stopped before production ended
    await r.finish(report('failed'));
    expect(perContext(api.calls)).toEqual({
      'homelab-deploy/production/staging': ['pending', 'success', 'success', 'success', 'success'],
      'homelab-deploy/production/production': ['pending', 'error'],
      'homelab-deploy/production/result': ['failure'],
    });
    expect(api.calls.find((c) => c.body.state === 'error')?.body.description).toBe(
      'production did not finish (failed)',
    );
    expect(warnings).toHaveLength(1);
    expect(open[open.length - 1].contexts).toEqual([]);
    await api.close();
  });

  it('gives up after three calls in a row failed despite their retries: GitHub is down', async () => {
    const api = await fakeApi(() => ({ status: 503, body: { message: 'unavailable' } }));
    const { r, warnings } = reporter();
    for (const p of ['preflight', 'secrets', 'snapshot', 'staging']) {
      await r.phaseStarted(p);
      await r.phaseFinished(p, 'success', 'ok');
    }
    await r.finish(report('success'));
    // preflight pending, preflight success, secrets pending: each tried `attempts` times, then nothing more.
    expect(perContext(api.calls)).toEqual({
      'homelab-deploy/production/preflight': Array(fast.attempts * 2)
        .fill('pending', 0, fast.attempts)
        .fill('success', fast.attempts),
      'homelab-deploy/production/secrets': Array(fast.attempts).fill('pending'),
    });
    expect(warnings).toHaveLength(1);
    await api.close();
  });

  it('missing permission: exactly one warning naming the permission, no more calls, nothing left open', async () => {
    const api = await fakeApi(() => ({
      status: 403,
      body: { message: 'Resource not accessible by integration' },
    }));
    const { r, warnings, open } = reporter();
    await r.phaseStarted('preflight');
    await r.phaseFinished('preflight', 'success', 'ok');
    await r.finish(report('success'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('permissions: statuses: write');
    expect(warnings[0]).toContain('The deploy itself is not affected');
    expect(api.calls).toHaveLength(1);
    expect(open[open.length - 1].contexts).toEqual([]);
    await api.close();
  });

  it('an API that always fails or is down never throws and finishes quickly', async () => {
    const api = await fakeApi(() => ({ status: 500, body: { message: 'boom' } }));
    const { r, warnings } = reporter();
    const t0 = Date.now();
    await expect(r.phaseFinished('staging', 'success', 'ok')).resolves.toBeUndefined();
    await expect(r.finish(report('success'))).resolves.toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(warnings).toHaveLength(1);
    await api.close();
    process.env.GITHUB_API_URL = 'http://127.0.0.1:1';
    const down = reporter();
    await expect(down.r.finish(report('failed'))).resolves.toBeUndefined();
  });
});

describe('deployments against a local API (GITHUB_API_URL)', () => {
  it('one deployment opened by the first phase, then the final status with log and environment URLs', async () => {
    const api = await fakeApi((c) => ({
      status: 201,
      body: c.path.endsWith('/deployments') ? { id: 77 } : {},
    }));
    const { r, open, warnings } = reporter({
      mode: 'deployments',
      environmentUrl: 'https://app.example.com',
    });
    // A production job starts with secrets, not pre-flight: the deployment opens all the same.
    void r.phaseStarted('secrets');
    void r.phaseFinished('secrets', 'success', 'ok');
    void r.phaseStarted('production');
    void r.phaseFinished('production', 'success', 'ok');
    await r.finish(report('success'));
    expect(api.calls.map((c) => `${c.method} ${c.path} ${c.body.state ?? ''}`)).toEqual([
      'POST /repos/jjeco/homelab/deployments ',
      'POST /repos/jjeco/homelab/deployments/77/statuses in_progress',
      'POST /repos/jjeco/homelab/deployments/77/statuses success',
    ]);
    expect(api.calls[0].body).toMatchObject({
      ref: SHA,
      environment: 'production',
      auto_merge: false,
      required_contexts: [],
      production_environment: true,
    });
    expect(api.calls[2].body).toMatchObject({
      log_url: 'https://github.com/jjeco/homelab/actions/runs/1',
      environment_url: 'https://app.example.com',
      auto_inactive: true,
    });
    expect(open.map((o) => o.deploymentId)).toEqual([77, undefined]);
    expect(warnings).toEqual([]);
    await api.close();
  });

  it('a failed run ends the deployment as failure; without deployments: write it warns once, naming it', async () => {
    const api = await fakeApi((c) => ({
      status: 201,
      body: c.path.endsWith('/deployments') ? { id: 5 } : {},
    }));
    const { r } = reporter({ mode: 'deployments', environment: 'staging' });
    await r.phaseStarted('preflight');
    await r.finish(report('failed'));
    expect(api.calls.map((c) => c.body.state ?? 'create')).toEqual(['create', 'in_progress', 'failure']);
    expect(api.calls[0].body.production_environment).toBe(false);
    await api.close();

    const denied = await fakeApi(() => ({ status: 403, body: { message: 'Resource not accessible' } }));
    const d = reporter({ mode: 'deployments' });
    await d.r.phaseStarted('preflight');
    await d.r.finish(report('success'));
    expect(denied.calls).toHaveLength(1);
    expect(d.warnings).toHaveLength(1);
    expect(d.warnings[0]).toContain('permissions: deployments: write');
    await denied.close();
  });
});

describe('closing what a killed run left open (post step)', () => {
  it('marks each pending context as error, the result last', async () => {
    const api = await fakeApi(() => ({ status: 201 }));
    await closeAbandoned(
      { mode: 'commit-status', sha: SHA, scope: 'staging', contexts: ['result', 'preflight', 'staging'] },
      {
        token: 'ghs_y',
        repository: 'jjeco/homelab',
        runUrl: 'https://run',
        warn: () => undefined,
        api: fast,
      },
    );
    expect(api.calls.map((c) => `${c.path} ${c.body.context}:${c.body.state}`)).toEqual([
      `${STATUSES} homelab-deploy/staging/preflight:error`,
      `${STATUSES} homelab-deploy/staging/staging:error`,
      `${STATUSES} homelab-deploy/staging/result:error`,
    ]);
    expect(api.calls.every((c) => c.auth === 'token ghs_y' && c.body.target_url === 'https://run')).toBe(
      true,
    );
    expect(String(api.calls[0].body.description)).toMatch(/^cancelled/);
    await api.close();
  });

  it('ends an open deployment with an error status, and does nothing when none is open', async () => {
    const api = await fakeApi(() => ({ status: 201 }));
    const opts = { token: 't', repository: 'o/r', warn: () => undefined, api: fast };
    await closeAbandoned(
      { mode: 'deployments', sha: SHA, scope: 'production', contexts: [], deploymentId: 9 },
      opts,
    );
    await closeAbandoned({ mode: 'deployments', sha: SHA, scope: 'production', contexts: [] }, opts);
    expect(api.calls.map((c) => `${c.path} ${c.body.state}`)).toEqual([
      '/repos/o/r/deployments/9/statuses error',
    ]);
    await api.close();
  });
});

describe('the REST client (Octokit with the retry and throttling plugins)', () => {
  /** One commit status through the client the reporter uses. */
  const post = (opts: Partial<ApiOptions> = {}) =>
    attempt(() =>
      githubClient({ token: 't', ...fast, ...opts }).rest.repos.createCommitStatus({
        owner: 'o',
        repo: 'r',
        sha: 'x',
        state: 'success',
      }),
    );

  it('retries 502 and 429 (honouring Retry-After) and succeeds', async () => {
    const api = await fakeApi((_c, n) =>
      n === 1
        ? { status: 502 }
        : n === 2
          ? {
              status: 429,
              headers: { 'retry-after': '1' },
              body: { message: 'You have exceeded a secondary rate limit' },
            }
          : { status: 201, body: { ok: true } },
    );
    const res = await post({ attempts: 4 });
    expect(res.ok).toBe(true);
    expect(api.calls).toHaveLength(3);
    await api.close();
  });

  it('retries a 403 secondary rate limit but not a plain 403', async () => {
    const api = await fakeApi((_c, n) =>
      n === 1
        ? {
            status: 403,
            headers: { 'retry-after': '1' },
            body: { message: 'You have exceeded a secondary rate limit' },
          }
        : { status: 201 },
    );
    expect((await post()).ok).toBe(true);
    await api.close();
    const denied = await fakeApi(() => ({
      status: 403,
      body: { message: 'Resource not accessible by integration' },
    }));
    const res = await post();
    expect(res).toMatchObject({ ok: false, status: 403, error: 'Resource not accessible by integration' });
    expect(denied.calls).toHaveLength(1);
    await denied.close();
  });

  it('fits descriptions without splitting characters', () => {
    expect(fitDescription('ä'.repeat(200))).toBe('ä'.repeat(139) + '…');
    expect(fitDescription('short')).toBe('short');
  });
});
