import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { attempt, createReleaseTag, githubClient, type ApiOptions } from '../../src/github/api';
import { createStatusReporter } from '../../src/github/statuses';
import type { Report } from '../../src/report/types';

/**
 * A local stand-in for the parts of GitHub's REST API the product uses, answering as docs.github.com documents:
 * commit statuses, deployments and their statuses, git tag objects and refs (a 422 "Reference already exists" for a
 * taken ref), and the rate-limit answers (403/429 with a secondary-rate-limit message and Retry-After, or
 * x-ratelimit-remaining: 0 with x-ratelimit-reset). Every request is recorded with its arrival time; `fault`
 * answers instead of the API for the calls it picks.
 */
interface Call {
  method: string;
  path: string;
  body: Record<string, unknown>;
  at: number;
}
type Answer = { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number };

async function fakeGitHub(fault?: (call: Call, n: number) => Answer | undefined) {
  const calls: Call[] = [];
  const refs = new Map<string, { type: 'tag' | 'commit'; sha: string }>();
  const tags = new Map<string, { tag: string; message: string; object: { type: string; sha: string } }>();
  let deployments = 0;
  const api = (c: Call): Answer => {
    let m: RegExpExecArray | null;
    if (c.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/statuses\/[0-9a-f]+$/.test(c.path))
      return {
        status: 201,
        body: { id: calls.length, state: c.body.state, context: c.body.context ?? 'default' },
      };
    if (c.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/deployments$/.test(c.path))
      return { status: 201, body: { id: ++deployments, ref: c.body.ref, environment: c.body.environment } };
    if (c.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/deployments\/\d+\/statuses$/.test(c.path))
      return { status: 201, body: { id: calls.length, state: c.body.state } };
    if (c.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/git\/tags$/.test(c.path)) {
      const sha = createHash('sha1').update(JSON.stringify(c.body)).digest('hex');
      const tag = {
        tag: String(c.body.tag),
        message: String(c.body.message),
        object: { type: String(c.body.type), sha: String(c.body.object) },
      };
      tags.set(sha, tag);
      return { status: 201, body: { sha, ...tag } };
    }
    if (c.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/git\/refs$/.test(c.path)) {
      const ref = String(c.body.ref);
      if (refs.has(ref))
        return {
          status: 422,
          body: {
            message: 'Reference already exists',
            documentation_url: 'https://docs.github.com/rest/git/refs#create-a-reference',
          },
        };
      const sha = String(c.body.sha);
      const object = { type: tags.has(sha) ? ('tag' as const) : ('commit' as const), sha };
      refs.set(ref, object);
      return { status: 201, body: { ref, object } };
    }
    if (c.method === 'GET' && (m = /^\/repos\/[^/]+\/[^/]+\/git\/ref\/(.+)$/.exec(c.path))) {
      const ref = `refs/${decodeURIComponent(m[1])}`;
      const object = refs.get(ref);
      return object
        ? { status: 200, body: { ref, object } }
        : { status: 404, body: { message: 'Not Found' } };
    }
    if (c.method === 'GET' && (m = /^\/repos\/[^/]+\/[^/]+\/git\/tags\/([0-9a-f]+)$/.exec(c.path))) {
      const tag = tags.get(m[1]);
      return tag
        ? { status: 200, body: { sha: m[1], ...tag } }
        : { status: 404, body: { message: 'Not Found' } };
    }
    return { status: 404, body: { message: 'Not Found' } };
  };
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      const call = {
        method: req.method ?? '',
        path: req.url ?? '',
        body: text ? JSON.parse(text) : {},
        at: Date.now(),
      };
      calls.push(call);
      const a = fault?.(call, calls.length) ?? api(call);
      setTimeout(() => {
        res.writeHead(a.status, { 'content-type': 'application/json; charset=utf-8', ...a.headers });
        res.end(JSON.stringify(a.body ?? {}));
      }, a.delayMs ?? 0).unref();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // A failed expectation skips a test's close(); afterEach closes what is left, so jest can exit.
  servers.add(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.GITHUB_API_URL = url;
  return {
    url,
    calls,
    refs,
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

const saved = process.env.GITHUB_API_URL;
afterEach(() => {
  if (saved === undefined) delete process.env.GITHUB_API_URL;
  else process.env.GITHUB_API_URL = saved;
});

const SHA = 'c0ffee'.padEnd(40, '0');
const SECONDARY = {
  message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
};
/** 20 ms for each second GitHub names; no pause between writes unless a test asks for one. */
const opts: ApiOptions = { token: 'ghs_test', attempts: 3, unitMs: 20, writeIntervalMs: 0, timeoutMs: 2000 };
const status = (o: Partial<ApiOptions> = {}) =>
  attempt(() =>
    githubClient({ ...opts, ...o }).rest.repos.createCommitStatus({
      owner: 'jjeco',
      repo: 'homelab',
      sha: SHA,
      state: 'success',
      context: 'homelab-deploy/staging/result',
    }),
  );
const gaps = (calls: Call[]) => calls.slice(1).map((c, i) => c.at - calls[i].at);

describe('Octokit client: retries as GitHub asks', () => {
  it('sends the documented request: path, token, API version header, JSON body', async () => {
    const gh = await fakeGitHub();
    const seen: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.add(server);
    process.env.GITHUB_API_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    expect((await status()).ok).toBe(true);
    expect(seen[0]).toMatchObject({
      authorization: 'token ghs_test',
      accept: 'application/vnd.github.v3+json',
      'content-type': 'application/json; charset=utf-8',
    });
    expect(seen[0]['user-agent']).toMatch(/^homelab-deploy /);
    server.close();
    server.closeAllConnections();
    await gh.close();
  });

  it('retries 5xx with growing pauses (1, then 4 units), then succeeds', async () => {
    const gh = await fakeGitHub((_c, n) => (n <= 2 ? { status: n === 1 ? 502 : 503 } : undefined));
    const r = await status();
    expect(r).toMatchObject({ ok: true, status: 201 });
    expect(gh.calls.map((c) => c.path)).toEqual(Array(3).fill(`/repos/jjeco/homelab/statuses/${SHA}`));
    const [first, second] = gaps(gh.calls);
    expect(first).toBeGreaterThanOrEqual(1 * 20 - 2);
    expect(second).toBeGreaterThanOrEqual(4 * 20 - 2);
    await gh.close();
  });

  it('gives up on a 5xx after `attempts` tries and says so without throwing', async () => {
    const gh = await fakeGitHub(() => ({ status: 500, body: { message: 'Server Error' } }));
    expect(await status()).toEqual({
      ok: false,
      status: 500,
      body: undefined,
      error: 'Server Error',
      rateLimited: false,
    });
    expect(gh.calls).toHaveLength(3);
    await gh.close();
  });

  it('429 secondary rate limit: waits the Retry-After GitHub names before trying again', async () => {
    const gh = await fakeGitHub((_c, n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '3' }, body: SECONDARY } : undefined,
    );
    expect((await status()).ok).toBe(true);
    expect(gh.calls).toHaveLength(2);
    expect(gaps(gh.calls)[0]).toBeGreaterThanOrEqual(3 * 20 - 2);
    await gh.close();
  });

  it('403 secondary rate limit: retried after Retry-After; still limited after `attempts`: given up as rate-limited', async () => {
    const gh = await fakeGitHub(() => ({ status: 403, headers: { 'retry-after': '1' }, body: SECONDARY }));
    const r = await status();
    expect(r).toMatchObject({ ok: false, status: 403, rateLimited: true });
    expect(r.error).toMatch(/secondary rate limit/);
    expect(gh.calls).toHaveLength(3);
    await gh.close();
  });

  it('a pause longer than worth waiting for (Retry-After 120 s) is not waited for', async () => {
    const gh = await fakeGitHub(() => ({ status: 429, headers: { 'retry-after': '120' }, body: SECONDARY }));
    const t0 = Date.now();
    expect(await status({ unitMs: 1000 })).toMatchObject({ ok: false, status: 429, rateLimited: true });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(gh.calls).toHaveLength(1);
    await gh.close();
  });

  it('primary rate limit (x-ratelimit-remaining: 0): waits until x-ratelimit-reset', async () => {
    const reset = Math.ceil(Date.now() / 1000) + 1;
    const gh = await fakeGitHub((_c, n) =>
      n === 1
        ? {
            status: 403,
            headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
            body: { message: 'API rate limit exceeded for installation ID 1.' },
          }
        : undefined,
    );
    expect((await status()).ok).toBe(true);
    expect(gh.calls).toHaveLength(2);
    await gh.close();
  });

  it('a plain 403 or 404 is an answer, not a hiccup: no retry', async () => {
    const gh = await fakeGitHub(() => ({
      status: 403,
      body: { message: 'Resource not accessible by integration' },
    }));
    expect(await status()).toMatchObject({
      ok: false,
      status: 403,
      error: 'Resource not accessible by integration',
      rateLimited: false,
    });
    expect(gh.calls).toHaveLength(1);
    await gh.close();
  });

  it('no answer (connection refused, or slower than the time limit) is status 0 with the reason', async () => {
    const gh = await fakeGitHub(() => ({ status: 201, delayMs: 1500 }));
    expect(await status({ timeoutMs: 200, attempts: 2 })).toMatchObject({
      ok: false,
      status: 0,
      error: 'timed out',
    });
    expect(gh.calls).toHaveLength(2);
    await gh.close();
    process.env.GITHUB_API_URL = gh.url; // closed: nothing listens there now
    expect(await status({ attempts: 2 })).toMatchObject({ ok: false, status: 0, error: 'ECONNREFUSED' });
  });

  it('spaces writes at least writeIntervalMs apart, across clients of the process', async () => {
    const gh = await fakeGitHub();
    const spaced = { writeIntervalMs: 150 };
    await status(spaced); // the first call of the file pays for module setup; measure the ones after it
    await Promise.all([status(spaced), status(spaced), status(spaced)]);
    expect(gh.calls).toHaveLength(4);
    for (const gap of gaps(gh.calls)) expect(gap).toBeGreaterThanOrEqual(150 - 40);
    await gh.close();
  });
});

describe('status reporter through Octokit: GitHub trouble never changes the deploy', () => {
  const report: Report = {
    schema: 1,
    project: 'homelab',
    status: 'success',
    phase: 'verify',
    systemsDeployed: ['thinkpad'],
    durationSeconds: 3,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:03.000Z',
    release: { id: SHA.slice(0, 12), commit: SHA, ref: 'main' },
    run: {},
    phasesRequested: ['all'],
    phases: [],
    hosts: [{ host: 'thinkpad', stage: 'staging', before: null, after: null, state: 'none' }],
    audit: [],
  };

  it.each([
    [
      '5xx on every call',
      { status: 502, body: { message: 'Bad Gateway' } },
      /failed after retries \(HTTP 502: Bad Gateway\)/,
    ],
    [
      '429 with Retry-After on every call',
      { status: 429, headers: { 'retry-after': '1' }, body: SECONDARY },
      /rate-limited/,
    ],
    [
      '403 secondary rate limit on every call',
      { status: 403, headers: { 'retry-after': '1' }, body: SECONDARY },
      /rate-limited/,
    ],
  ])('%s: retried, then given up; one warning; the report is untouched', async (_name, answer, warning) => {
    const gh = await fakeGitHub(() => answer);
    const warnings: string[] = [];
    const before = JSON.stringify(report);
    const r = createStatusReporter({
      token: 'ghs_test',
      repository: 'jjeco/homelab',
      sha: SHA,
      mode: 'commit-status',
      environment: 'staging',
      warn: (m) => warnings.push(m),
      api: opts,
    });
    for (const p of ['preflight', 'staging', 'verify']) {
      await r.phaseStarted(p);
      await r.phaseFinished(p, 'success', `${p} ok`);
    }
    await expect(r.finish(report)).resolves.toBeUndefined();
    expect(JSON.stringify(report)).toBe(before);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(warning);
    expect(warnings[0]).toMatch(/the deploy result is unaffected/i);
    expect(warnings[0]).not.toContain('permissions:');
    // preflight pending, preflight success, staging pending failed after their retries: then it stops calling.
    expect(gh.calls).toHaveLength(3 * opts.attempts!);
    await gh.close();
  });
});

describe('createReleaseTag: an annotated tag object, then its ref', () => {
  const tag = {
    owner: 'jjeco',
    repo: 'homelab',
    tag: 'v1.0.0',
    sha: SHA,
    message: 'homelab-deploy release v1.0.0',
  };

  it('creates the tag object for the commit and refs/tags/<tag> pointing at it', async () => {
    const gh = await fakeGitHub();
    const r = await createReleaseTag(tag, opts);
    expect(gh.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'POST /repos/jjeco/homelab/git/tags',
      'POST /repos/jjeco/homelab/git/refs',
    ]);
    expect(gh.calls[0].body).toEqual({
      tag: 'v1.0.0',
      message: 'homelab-deploy release v1.0.0',
      object: SHA,
      type: 'commit',
    });
    expect(r).toEqual({
      ok: true,
      created: true,
      ref: 'refs/tags/v1.0.0',
      tagSha: expect.stringMatching(/^[0-9a-f]{40}$/),
    });
    expect(gh.calls[1].body).toEqual({ ref: 'refs/tags/v1.0.0', sha: r.ok ? r.tagSha : '' });
    expect(gh.refs.get('refs/tags/v1.0.0')).toEqual({ type: 'tag', sha: r.ok ? r.tagSha : '' });
    await gh.close();
  });

  it('a re-run for the same commit is done already; a tag on another commit is refused and left alone', async () => {
    const gh = await fakeGitHub();
    const first = await createReleaseTag(tag, opts);
    const again = await createReleaseTag(tag, opts);
    expect(again).toEqual({
      ok: true,
      created: false,
      ref: 'refs/tags/v1.0.0',
      tagSha: first.ok ? first.tagSha : '',
    });
    const other = await createReleaseTag({ ...tag, sha: 'b'.repeat(40) }, opts);
    expect(other).toEqual({
      ok: false,
      status: 422,
      error: `release tag v1.0.0 already exists on commit ${SHA}, not ${'b'.repeat(40)}; it is left as it is`,
    });
    expect(gh.refs.get('refs/tags/v1.0.0')).toEqual({ type: 'tag', sha: first.ok ? first.tagSha : '' });
    await gh.close();
  });

  it('refuses a short SHA before calling GitHub, and reports a missing permission without throwing', async () => {
    const gh = await fakeGitHub((c) =>
      c.path.endsWith('/git/tags')
        ? { status: 403, body: { message: 'Resource not accessible by integration' } }
        : undefined,
    );
    expect(await createReleaseTag({ ...tag, sha: 'c0ffee' }, opts)).toEqual({
      ok: false,
      status: 0,
      error: 'release tag v1.0.0: "c0ffee" is not a full commit SHA',
    });
    expect(gh.calls).toHaveLength(0);
    expect(await createReleaseTag(tag, opts)).toEqual({
      ok: false,
      status: 403,
      error: 'release tag v1.0.0: Resource not accessible by integration',
    });
    await gh.close();
  });
});
