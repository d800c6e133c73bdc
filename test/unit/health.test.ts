import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config/load';
import { resolveHealth } from '../../src/config/resolve';
import type { HealthCheckInput } from '../../src/config/schema';
import { healthCheckSchema } from '../../src/config/schema';
import { runHealthCheck } from '../../src/health/run';
import type { HostConfig } from '../../src/config/types';
import { ConnectionPool } from '../../src/remote/pool';
import { makeContext } from '../../src/run/context';
import { SshTarget } from '../../src/targets/ssh/target';
import { parseJunit } from '../../src/pipeline/junit';
import { renderEvent } from '../../src/report/text';
import { Redactor } from '../../src/secrets/redact';
import { MINIMAL, writeConfig } from '../fixtures/config';
import { selfSignedCert } from '../helpers/tls';

const COMMIT = 'abcdef0123456789abcdef0123456789abcdef01';
const RELEASE = COMMIT.slice(0, 12);
const config = loadConfig(writeConfig(MINIMAL));
const host = { ...config.hosts.thinkpad, address: '127.0.0.1' };
const redactor = new Redactor();
redactor.add('hunter2-secret-token');
const ctx = makeContext(config, { runToken: 'health', env: {}, redactor, commit: COMMIT });
const pool = new ConnectionPool(config, { env: {}, redactor, runToken: 'health' });
const subject = (h: HostConfig, stage: string) => new SshTarget(ctx, h, { pool }).healthSubject(stage);

type Handler = (n: number, req: http.IncomingMessage, res: http.ServerResponse) => void;
const servers: (http.Server | https.Server)[] = [];
afterAll(() => servers.forEach((s) => s.close()));

async function serve(handler: Handler, tls?: { key: string; cert: string }): Promise<number> {
  let n = 0;
  const fn = (req: http.IncomingMessage, res: http.ServerResponse) => handler(++n, req, res);
  const srv = tls ? https.createServer(tls, fn) : http.createServer(fn);
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return (srv.address() as AddressInfo).port;
}

const json = (
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

function check(input: Record<string, unknown>) {
  return resolveHealth(
    healthCheckSchema.parse({ interval: '50ms', timeout: '1s', retries: 3, ...input }) as HealthCheckInput,
    't',
  );
}

describe('health checks against real local servers', () => {
  it('passes on status + JSON path assertions and reports what came back when they fail', async () => {
    const port = await serve((_n, _q, res) =>
      json(res, 200, { status: 'ok', checks: { db: 'down' }, items: [{ id: 7 }] }),
    );
    const good = await runHealthCheck(
      ctx,
      subject(host, 'staging'),
      check({
        http: `http://{{host.address}}:${port}/h`,
        expect: { status: [200, 204], json: { status: 'ok', 'items.0.id': 7 } },
      }),
    );
    expect(good).toMatchObject({ ok: true, attempts: 1 });
    const bad = await runHealthCheck(
      ctx,
      subject(host, 'staging'),
      check({ http: `http://127.0.0.1:${port}/h`, retries: 1, expect: { json: { 'checks.db': 'up' } } }),
    );
    expect(bad.ok).toBe(false);
    expect(bad.lastError).toBe(
      `failed 2 times (retries: 1); last error: GET http://127.0.0.1:${port}/h: checks.db expected "up", got "down"`,
    );
  });

  it('masks secrets and truncates long bodies in the error', async () => {
    const port = await serve((_n, _q, res) =>
      json(res, 500, { error: 'token hunter2-secret-token rejected', pad: 'x'.repeat(5000) }),
    );
    const r = await runHealthCheck(
      ctx,
      subject(host, 'staging'),
      check({ http: `http://127.0.0.1:${port}/`, retries: 0 }),
    );
    expect(r.lastError).toContain('expected status 200, got 500');
    expect(r.lastError).toContain('token *** rejected');
    expect(r.lastError).not.toContain('hunter2');
    expect(r.lastError?.length).toBeLessThan(400);
    expect(r.lastError).toMatch(/… \(\d+ bytes\)/);
  });

  it('respects the start period of a slow starter', async () => {
    const t0 = Date.now();
    const port = await serve((_n, _q, res) =>
      Date.now() - t0 < 700 ? json(res, 503, { status: 'starting' }) : json(res, 200, { status: 'ok' }),
    );
    const impatient = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, retries: 0 }),
    );
    expect(impatient.ok).toBe(false);
    const patient = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, retries: 0, start_period: '900ms' }),
    );
    expect(patient).toMatchObject({ ok: true, attempts: 1 });
  });

  it('does not promote a flapping service: 200/500/200 never gives K consecutive passes', async () => {
    const port = await serve((n, _q, res) => json(res, n % 2 ? 200 : 500, {}));
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, successes: 2, retries: 3 }),
    );
    expect(r.ok).toBe(false);
    expect(r.attempts).toBe(8);
    expect(r.lastError).toMatch(/^failed 4 times/);
    const steady = await serve((_n, _q, res) => json(res, 200, {}));
    expect(
      await runHealthCheck(
        ctx,
        subject(host, 's'),
        check({ http: `http://127.0.0.1:${steady}/`, successes: 3 }),
      ),
    ).toMatchObject({ ok: true, attempts: 3 });
  });

  it('rejects an answer carrying the wrong release marker (an old container)', async () => {
    const old = await serve((_n, _q, res) =>
      json(res, 200, { status: 'ok', release: 'oldoldoldold' }, { 'x-release': 'oldoldoldold' }),
    );
    const viaHeader = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${old}/`, retries: 0, expect: { release: 'header:X-Release' } }),
    );
    expect(viaHeader.lastError).toContain(
      `release marker header:X-Release is "oldoldoldold", expected "${RELEASE}" (an old release is answering)`,
    );
    const viaJson = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${old}/`, retries: 0, expect: { release: 'json:release' } }),
    );
    expect(viaJson.ok).toBe(false);
    const fresh = await serve((_n, _q, res) =>
      json(res, 200, { release: RELEASE }, { 'x-release': RELEASE }),
    );
    expect(
      (
        await runHealthCheck(
          ctx,
          subject(host, 's'),
          check({ http: `http://127.0.0.1:${fresh}/`, expect: { release: 'json:release' } }),
        )
      ).ok,
    ).toBe(true);
  });

  it('stops at the overall deadline with a clear error', async () => {
    const port = await serve((_n, _q, res) => json(res, 503, { status: 'down' }));
    const t0 = Date.now();
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, retries: 1000, deadline: '600ms', interval: '100ms' }),
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.ok).toBe(false);
    expect(r.lastError).toMatch(
      /^deadline of 600ms reached after \d+ attempts \(0\/1 consecutive passes\); last error: GET .* got 503/,
    );
  });

  it('checks the response time limit, body regex and the method/headers sent', async () => {
    let seen: http.IncomingHttpHeaders = {};
    let method = '';
    const port = await serve((_n, req, res) => {
      seen = req.headers;
      method = req.method ?? '';
      setTimeout(() => json(res, 200, { version: '2.4.1' }), 150);
    });
    const slow = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, retries: 0, expect: { max_response_time: '50ms' } }),
    );
    expect(slow.lastError).toMatch(/answered in \d+ms, limit 50ms/);
    const ok = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({
        http: `http://127.0.0.1:${port}/`,
        method: 'POST',
        headers: { 'X-Probe': 'hd' },
        expect: { body_regex: '"version":"2\\.\\d+' },
      }),
    );
    expect(ok.ok).toBe(true);
    expect(method).toBe('POST');
    expect(seen['x-probe']).toBe('hd');
  });

  it('verifies TLS against a custom CA, and fails without it', async () => {
    const tls = selfSignedCert('localhost');
    const port = await serve((_n, _q, res) => json(res, 200, { status: 'ok' }), {
      key: tls.key,
      cert: tls.cert,
    });
    const withCa = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `https://127.0.0.1:${port}/`, ca_file: tls.certFile }),
    );
    expect(withCa.ok).toBe(true);
    const without = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `https://127.0.0.1:${port}/`, retries: 0 }),
    );
    expect(without.lastError).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('checks TCP ports', async () => {
    const port = await serve((_n, _q, res) => res.end());
    expect(
      (await runHealthCheck(ctx, subject(host, 's'), check({ tcp: `{{host.address}}:${port}` }))).ok,
    ).toBe(true);
    const closed = await runHealthCheck(ctx, subject(host, 's'), check({ tcp: '127.0.0.1:1', retries: 0 }));
    expect(closed.lastError).toContain('tcp 127.0.0.1:1: ECONNREFUSED');
  });
});

describe('HTTP checks have a hard limit per attempt', () => {
  /** Headers at once, then one byte every 100 ms, for ever: the socket is never idle long enough to time out. */
  const trickle = () =>
    serve((_n, _q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const t = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(t));
    });

  it('gives up on a server trickling its body within the timeout, not never', async () => {
    const port = await trickle();
    const t0 = Date.now();
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, timeout: '500ms', retries: 1, interval: '50ms' }),
    );
    const elapsed = Date.now() - t0;
    expect(r.ok).toBe(false);
    expect(r.attempts).toBe(2);
    expect(r.lastError).toContain('no complete answer within 500ms');
    // Two attempts of 500 ms and one interval; generous for a loaded machine, far below "for ever".
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(3000);
  });

  it('cuts the last attempt at the overall deadline, even when the timeout is longer', async () => {
    const port = await trickle();
    const t0 = Date.now();
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, timeout: '30s', retries: 5, deadline: '700ms' }),
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.ok).toBe(false);
    expect(r.lastError).toMatch(
      /^deadline of 700ms reached after 1 attempts .*no complete answer within \d+ms/,
    );
  });

  it('stops reading an endless body at 256 KiB and closes the connection', async () => {
    let closed = false;
    let sent = 0;
    const port = await serve((_n, _q, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'e');
      const pump = () => {
        while (!closed && res.write(chunk)) sent += chunk.length;
        if (!closed) res.once('drain', pump);
      };
      res.on('close', () => (closed = true));
      pump();
    });
    const t0 = Date.now();
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, timeout: '20s', retries: 0 }),
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.lastError).toContain('expected status 200, got 500');
    expect(r.lastError).toContain('(only the first 262144 bytes were read)');
    await new Promise((res) => setTimeout(res, 100));
    expect(closed).toBe(true);
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it("records each probe's latency apart from the time the whole check took", async () => {
    const port = await serve((n, _q, res) => setTimeout(() => json(res, n < 3 ? 503 : 200, {}), 120));
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, interval: '300ms', retries: 5 }),
    );
    expect(r).toMatchObject({ ok: true, attempts: 3 });
    expect(r.latency?.lastMs).toBeGreaterThanOrEqual(110);
    expect(r.latency?.lastMs).toBeLessThan(600);
    expect(r.latency?.maxMs).toBeGreaterThanOrEqual(r.latency?.lastMs ?? Infinity);
    // Two intervals of 300 ms lie between the probes: the check took far longer than one probe.
    expect(r.durationMs).toBeGreaterThan(600 + 3 * 110);
  });
});

describe('health check errors and secrets', () => {
  it("redacts before cutting: a secret straddling the excerpt's cut leaks no prefix", async () => {
    // The excerpt keeps 200 characters; the 20-character secret starts at 190.
    const port = await serve((_n, _q, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('x'.repeat(190) + 'hunter2-secret-token' + 'y'.repeat(1000));
    });
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://127.0.0.1:${port}/`, retries: 0 }),
    );
    expect(r.lastError).toContain('got 500: ' + 'x'.repeat(190) + '***');
    expect(r.lastError).not.toMatch(/hunter|hunt|2-se/);
  });

  it('never names the credentials of a URL with user:password@', async () => {
    const port = await serve((_n, req, res) => json(res, req.headers.authorization ? 503 : 401, {}));
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ http: `http://probe:pr0be-pass@127.0.0.1:${port}/`, retries: 0 }),
    );
    expect(r.lastError).toContain(`GET http://***@127.0.0.1:${port}/: expected status 200, got 503`);
    expect(r.lastError).not.toContain('pr0be-pass');
  });
});

describe('health check summary line', () => {
  it('names the check and host, the result, how long it took, the attempts and the last error', async () => {
    const port = await serve((_n, _q, res) => json(res, 503, { status: 'down' }));
    const r = await runHealthCheck(
      ctx,
      subject(host, 's'),
      check({ name: 'app', http: `http://127.0.0.1:${port}/`, retries: 1, interval: '400ms' }),
    );
    const line = renderEvent({ type: 'host-health', phase: 's', host: 'thinkpad', health: r });
    expect(line).toMatch(
      /^ {4}✖ thinkpad app: FAILED in (\d{3}ms|\d+\.\ds) \(2 attempts\): failed 2 times \(retries: 1\); last error: GET .* got 503/,
    );
    const ok = renderEvent({
      type: 'host-health',
      phase: 's',
      host: 'thinkpad',
      health: { check: 'app', ok: true, attempts: 1, durationMs: 2500 },
    });
    expect(ok).toBe('    ♥ thinkpad app: healthy in 2.5s (1 attempt)');
  });
});

describe('junit', () => {
  it('counts pytest-style and jest-junit-style reports', () => {
    expect(
      parseJunit(
        '<testsuites><testsuite name="a" tests="5" failures="1" errors="0" skipped="1"/><testsuite tests="3" failures="0" errors="1"/></testsuites>',
      ),
    ).toEqual({ tests: 8, passed: 5, failures: 1, errors: 1, skipped: 1 });
    expect(
      parseJunit(
        '<testsuites name="jest" tests="10" failures="2" errors="0"><testsuite tests="10" failures="2"/></testsuites>',
      ),
    ).toEqual({ tests: 10, passed: 8, failures: 2, errors: 0, skipped: 0 });
    expect(parseJunit('not xml')).toBeUndefined();
  });
});

describe('http check headers', () => {
  it('renders placeholders in header values per target', async () => {
    let seen: http.IncomingHttpHeaders = {};
    const port = await serve((_n, req, res) => {
      seen = req.headers;
      json(res, 200, {});
    });
    const r = await runHealthCheck(
      ctx,
      subject(host, 'staging'),
      check({
        http: `http://127.0.0.1:${port}/h`,
        headers: { 'X-Host': '{{host.name}}', 'X-Release': '{{release.id}}' },
      }),
    );
    expect(r.ok).toBe(true);
    expect(seen['x-host']).toBe('thinkpad');
    expect(seen['x-release']).toBe(RELEASE);
  });
});
