import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { githubRequest } from '../../src/github/api';
import { createStatusReporter, fitDescription } from '../../src/github/statuses';
import type { Report } from '../../src/report/types';

interface Call {
  method: string;
  path: string;
  body: Record<string, unknown>;
  auth?: string;
}

/** A local stand-in for the GitHub API whose answers each test scripts. */
async function fakeApi(
  answer: (call: Call, n: number) => { status: number; body?: unknown; headers?: Record<string, string> },
) {
  const calls: Call[] = [];
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
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(JSON.stringify(a.body ?? {}));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const SHA = 'a'.repeat(40);
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

const fast = { attempts: 3, maxDelayMs: 50, timeoutMs: 2000 };

describe('GitHub statuses against a local API', () => {
  it('a full run: pending + success per phase, then the result, on the deployed commit', async () => {
    const api = await fakeApi(() => ({ status: 201 }));
    const warnings: string[] = [];
    const r = createStatusReporter({
      token: 'ghs_x',
      repository: 'jjeco/homelab',
      sha: SHA,
      runUrl: 'https://github.com/jjeco/homelab/actions/runs/1',
      environment: 'production',
      useDeployments: false,
      apiUrl: api.url,
      warn: (m) => warnings.push(m),
      api: fast,
    });
    for (const p of ['preflight', 'staging']) {
      await r.phaseStarted(p);
      await r.phaseFinished(p, 'success', `${p} ok`);
    }
    await r.finish(report('success'));
    expect(api.calls.map((c) => [c.method, c.path, c.body.context, c.body.state])).toEqual([
      ['POST', `/repos/jjeco/homelab/statuses/${SHA}`, 'homelab-deploy/production/preflight', 'pending'],
      ['POST', `/repos/jjeco/homelab/statuses/${SHA}`, 'homelab-deploy/production/preflight', 'success'],
      ['POST', `/repos/jjeco/homelab/statuses/${SHA}`, 'homelab-deploy/production/staging', 'pending'],
      ['POST', `/repos/jjeco/homelab/statuses/${SHA}`, 'homelab-deploy/production/staging', 'success'],
      ['POST', `/repos/jjeco/homelab/statuses/${SHA}`, 'homelab-deploy/production/result', 'success'],
    ]);
    expect(
      api.calls.every(
        (c) =>
          c.auth === 'Bearer ghs_x' &&
          c.body.target_url === 'https://github.com/jjeco/homelab/actions/runs/1',
      ),
    ).toBe(true);
    expect(api.calls[4].body.description).toBe(`success: 2/2 hosts on ${SHA.slice(0, 12)}`);
    expect(warnings).toEqual([]);
    await api.close();
  });

  it('a failed run: failure state with a description cut to 140 characters', async () => {
    const api = await fakeApi(() => ({ status: 201 }));
    const r = createStatusReporter({
      token: 't',
      repository: 'o/r',
      sha: SHA,
      useDeployments: false,
      apiUrl: api.url,
      warn: () => undefined,
      api: fast,
    });
    await r.phaseFinished('production', 'failure', 'health-failed: ' + 'x'.repeat(300));
    await r.finish(report('rolled_back'));
    expect(api.calls.map((c) => c.body.state)).toEqual(['failure', 'failure']);
    for (const c of api.calls) expect([...String(c.body.description)].length).toBeLessThanOrEqual(140);
    expect(String(api.calls[1].body.description)).toMatch(
      /^rolled_back: 0\/2 hosts on aaaaaaaaaaaa — health-failed: .*…$/,
    );
    await api.close();
  });

  it('deployments mode: one deployment, then in_progress and the final status with log_url', async () => {
    const api = await fakeApi((c) => ({
      status: 201,
      body: c.path.endsWith('/deployments') ? { id: 77 } : {},
    }));
    const r = createStatusReporter({
      token: 't',
      repository: 'o/r',
      sha: SHA,
      runUrl: 'https://run',
      environment: 'production',
      useDeployments: true,
      apiUrl: api.url,
      warn: () => undefined,
      api: fast,
    });
    await r.phaseStarted('preflight');
    await r.phaseStarted('staging');
    await r.finish(report('success'));
    expect(api.calls.map((c) => `${c.method} ${c.path} ${c.body.state ?? ''}`)).toEqual([
      'POST /repos/o/r/deployments ',
      'POST /repos/o/r/deployments/77/statuses in_progress',
      'POST /repos/o/r/deployments/77/statuses success',
    ]);
    expect(api.calls[0].body).toMatchObject({
      ref: SHA,
      environment: 'production',
      auto_merge: false,
      required_contexts: [],
      production_environment: true,
    });
    expect(api.calls[2].body).toMatchObject({ log_url: 'https://run', auto_inactive: true });
    await api.close();
  });

  it('retries 502 and 429 (honouring Retry-After) and succeeds', async () => {
    const api = await fakeApi((_c, n) =>
      n === 1
        ? { status: 502 }
        : n === 2
          ? { status: 429, headers: { 'retry-after': '0' }, body: { message: 'rate limited' } }
          : { status: 201, body: { ok: true } },
    );
    const res = await githubRequest(
      'POST',
      '/repos/o/r/statuses/x',
      { state: 'success' },
      { token: 't', baseUrl: api.url, attempts: 4, maxDelayMs: 50 },
    );
    expect(res.ok).toBe(true);
    expect(api.calls).toHaveLength(3);
    await api.close();
  });

  it('retries a 403 secondary rate limit but not a plain 403', async () => {
    const api = await fakeApi((_c, n) =>
      n === 1
        ? { status: 403, body: { message: 'You have exceeded a secondary rate limit' } }
        : { status: 201 },
    );
    expect((await githubRequest('POST', '/x', {}, { token: 't', baseUrl: api.url, maxDelayMs: 50 })).ok).toBe(
      true,
    );
    await api.close();
    const denied = await fakeApi(() => ({
      status: 403,
      body: { message: 'Resource not accessible by integration' },
    }));
    const res = await githubRequest('POST', '/x', {}, { token: 't', baseUrl: denied.url, maxDelayMs: 50 });
    expect(res).toMatchObject({ ok: false, status: 403, error: 'Resource not accessible by integration' });
    expect(denied.calls).toHaveLength(1);
    await denied.close();
  });

  it('missing permission: exactly one warning naming the permission, then no more calls', async () => {
    const api = await fakeApi(() => ({
      status: 403,
      body: { message: 'Resource not accessible by integration' },
    }));
    const warnings: string[] = [];
    const r = createStatusReporter({
      token: 't',
      repository: 'o/r',
      sha: SHA,
      useDeployments: false,
      apiUrl: api.url,
      warn: (m) => warnings.push(m),
      api: fast,
    });
    await r.phaseStarted('preflight');
    await r.phaseFinished('preflight', 'success', 'ok');
    await r.finish(report('success'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('permissions: statuses: write');
    expect(warnings[0]).toContain('The deploy itself is not affected');
    expect(api.calls).toHaveLength(1);
    await api.close();
  });

  it('an API that always fails or is down never throws and finishes quickly', async () => {
    const api = await fakeApi(() => ({ status: 500, body: { message: 'boom' } }));
    const warnings: string[] = [];
    const r = createStatusReporter({
      token: 't',
      repository: 'o/r',
      sha: SHA,
      useDeployments: false,
      apiUrl: api.url,
      warn: (m) => warnings.push(m),
      api: fast,
    });
    const t0 = Date.now();
    await expect(r.phaseFinished('staging', 'success', 'ok')).resolves.toBeUndefined();
    await expect(r.finish(report('success'))).resolves.toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(warnings).toHaveLength(1);
    await api.close();
    const down = createStatusReporter({
      token: 't',
      repository: 'o/r',
      sha: SHA,
      useDeployments: false,
      apiUrl: 'http://127.0.0.1:1',
      warn: () => undefined,
      api: fast,
    });
    await expect(down.finish(report('failed'))).resolves.toBeUndefined();
  });

  it('fits descriptions without splitting characters', () => {
    expect(fitDescription('ä'.repeat(200))).toBe('ä'.repeat(139) + '…');
    expect(fitDescription('short')).toBe('short');
  });
});
