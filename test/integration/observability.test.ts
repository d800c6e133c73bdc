import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { deploy } from '../../src/engine';
import { releaseIdFor } from '../../src/run/release';
import { loadConfig } from '../../src/config/load';
import { pushGroups, readGroup } from '../../src/metrics/publish';
import { publishOutcome } from '../../src/observe';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { MINIMAL, writeConfig } from '../fixtures/config';
import { freePort, makeProject, type Project } from '../fixtures/pipeline';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

const PGW = '/usr/bin/prometheus-pushgateway';
let sandbox: SshSandbox;
const gateways: ChildProcess[] = [];
let pgwUrl: string;
let hook: http.Server;
let hookUrl: string;
const hookEvents: { event: string; body: Record<string, unknown> }[] = [];
const projects: Project[] = [];

function ensurePushgateway(): void {
  if (fs.existsSync(PGW)) return;
  if (process.getuid?.() !== 0)
    throw new Error(
      `${PGW} is missing: install Debian's prometheus-pushgateway (apt-get install -y prometheus-pushgateway)`,
    );
  const r = spawnSync(
    'apt-get',
    ['install', '-y', '-qq', '--no-install-recommends', 'prometheus-pushgateway'],
    { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } },
  );
  if (r.status !== 0) throw new Error('apt-get install prometheus-pushgateway failed');
}

/** A real Pushgateway on a free port with its own persistence file, and optionally basic auth (web config). */
async function startPushgateway(webConfig?: string): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-pgw-'));
  // Debian's build persists to /var/lib/prometheus by default; a private file keeps runs apart.
  const args = [`--web.listen-address=127.0.0.1:${port}`, `--persistence.file=${path.join(dir, 'data')}`];
  if (webConfig) {
    fs.writeFileSync(path.join(dir, 'web.yml'), webConfig);
    args.push(`--web.config.file=${path.join(dir, 'web.yml')}`);
  }
  const proc = spawn(PGW, args, { stdio: 'ignore' });
  gateways.push(proc);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    // /-/ready answers 401 when auth is on: any HTTP answer means it listens.
    if (
      await fetch(`${url}/-/ready`).then(
        () => true,
        () => false,
      )
    )
      return { url, proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the Pushgateway did not start');
}

beforeAll(async () => {
  ensurePushgateway();
  sandbox = await startSshSandbox({ names: ['thinkpad', 'rtx1080', 'vps'] });
  ({ url: pgwUrl } = await startPushgateway());
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      hookEvents.push({ event: String(req.headers['x-homelab-deploy-event']), body: JSON.parse(body) });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`;
}, 120_000);
afterAll(async () => {
  for (const p of projects) p.stopServices();
  for (const g of gateways) g.kill();
  hook?.close();
  await sandbox?.stop();
});

/** Pushgateway's /metrics as [name, labels, value] rows. */
async function scrape(
  url = pgwUrl,
  headers: Record<string, string> = {},
): Promise<{ name: string; labels: Record<string, string>; value: number }[]> {
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('homelab_deploy_'))
    .map((l) => {
      const m = /^(\w+)\{(.*)\} (\S+)$/.exec(l) as RegExpExecArray;
      const labels = Object.fromEntries(
        [...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
      );
      return { name: m[1], labels, value: Number(m[3]) };
    });
}

describe('observability of a real deploy', () => {
  it('pushes per-run and per-host metrics to a real Pushgateway, writes the textfile, notifies start and outcome', async () => {
    const textfile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hd-prom-')), 'homelab_deploy.prom');
    const p = await makeProject(sandbox, {
      config: (c) =>
        `${c}notify:\n  webhook: { url_env: HD_HOOK }\nmetrics:\n  pushgateway: { url: "${pgwUrl}" }\n  textfile: ${textfile}\n  environment: homelab\n`,
    });
    projects.push(p);
    const env = { ...process.env, HD_TEST_SECRET: 'obs-secret', HD_HOOK: hookUrl };
    expect(
      (await deploy({ configPath: p.configPath, phase: 'all', ref: 'HEAD', env, redactor: new Redactor() }))
        .status,
    ).toBe('success');
    const v2 = releaseIdFor(p.commit('v2'));
    p.fault('vps', v2);
    const warnings: string[] = [];
    const report = await deploy({
      configPath: p.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
      onEvent: (e) => void (e.type === 'log' && e.level === 'warn' && warnings.push(e.message)),
    });
    expect(report.status).toBe('partial_success');
    expect(warnings).toEqual([]);

    const rows = await scrape();
    const one = (name: string, labels: Record<string, string>) =>
      rows.filter((r) => r.name === name && Object.entries(labels).every(([k, v]) => r.labels[k] === v));
    expect(
      one('homelab_deploy_last_run_status', {
        job: 'homelab_deploy',
        environment: 'homelab',
        project: 'sample',
        status: 'partial_success',
      }).map((r) => r.value),
    ).toEqual([1]);
    expect(one('homelab_deploy_last_run_status', { status: 'success' }).map((r) => r.value)).toEqual([0]);
    expect(
      one('homelab_deploy_host_on_release', {
        job: 'homelab_deploy',
        environment: 'homelab',
        host: 'rtx1080',
        stage: 'production',
      }).map((r) => r.value),
    ).toEqual([1]);
    expect(one('homelab_deploy_host_on_release', { host: 'vps' }).map((r) => r.value)).toEqual([0]);
    expect(one('homelab_deploy_host_retries', { host: 'vps' }).map((r) => r.value)).toEqual([2]);
    expect(one('homelab_deploy_host_rollback', { host: 'vps', result: 'ok' }).map((r) => r.value)).toEqual([
      1,
    ]);
    expect(
      one('homelab_deploy_health_check_failed', { host: 'vps', check: 'app', phase: 'public' }).map(
        (r) => r.value,
      ),
    ).toEqual([1]);
    expect(
      one('homelab_deploy_health_check_failed', { host: 'rtx1080', check: 'app', phase: 'verify' }).map(
        (r) => r.value,
      ),
    ).toEqual([0]);
    expect(one('homelab_deploy_lock_wait_seconds', { host: 'thinkpad' }).map((r) => r.value)).toEqual([0]);
    expect(one('homelab_deploy_last_run_duration_seconds', { environment: 'homelab' })[0].value).toBeCloseTo(
      report.durationSeconds,
      5,
    );

    // Probe latency of each check, apart from the time until it passed.
    const latency = one('homelab_deploy_health_check_latency_seconds', { host: 'rtx1080', check: 'app' });
    expect(latency.map((r) => r.labels.phase).sort()).toEqual(['production', 'verify']);
    for (const r of latency) expect(r.value).toBeLessThan(2);
    // Counters carried from the first run to the second through the gateway (read back, added to, pushed).
    const runs = { job: 'homelab_deploy', project: 'sample', environment: 'homelab' };
    expect(one('homelab_deploy_runs_total', { ...runs, status: 'success' }).map((r) => r.value)).toEqual([1]);
    expect(
      one('homelab_deploy_runs_total', { ...runs, status: 'partial_success' }).map((r) => r.value),
    ).toEqual([1]);
    const deploys = (stage: string, outcome: string) =>
      one('homelab_deploy_stage_deploys_total', { ...runs, stage, outcome }).map((r) => r.value);
    expect(deploys('production', 'success')).toEqual([2]);
    expect(deploys('public', 'success')).toEqual([1]);
    expect(deploys('public', 'rolled_back')).toEqual([1]);
    expect(
      one('homelab_deploy_stage_incident_open_since_timestamp_seconds', { stage: 'public' }).map(
        (r) => r.value,
      ),
    ).toHaveLength(1);

    const prom = fs.readFileSync(textfile, 'utf8');
    expect(prom.match(/^# TYPE homelab_deploy_host_on_release gauge$/gm)).toHaveLength(1);
    expect(prom).toContain(
      'homelab_deploy_host_on_release{project="sample",environment="homelab",host="vps",stage="public"} 0',
    );

    expect(hookEvents.map((e) => e.event)).toEqual(['started', 'succeeded', 'started', 'partial_success']);
    expect(hookEvents[3].body).toMatchObject({
      status: 'partial_success',
      release: v2,
      action: expect.stringContaining('Manual intervention required'),
    });
    expect(JSON.stringify(hookEvents)).not.toContain('obs-secret');
  }, 120_000);

  it('two projects sharing a gateway and an environment name keep their own series', async () => {
    const { url } = await startPushgateway();
    const cfg = (project: string) =>
      loadConfig(
        writeConfig(
          `${MINIMAL.replace('project: app', `project: ${project}`)}metrics:\n  pushgateway: { url: "${url}" }\n  environment: homelab\n`,
        ),
      );
    const warnings: string[] = [];
    const o = { env: {}, redactor: new Redactor(), warn: (m: string) => warnings.push(m), context: {} };
    await publishOutcome(cfg('shop'), runReport('shop', 'success'), o);
    await publishOutcome(cfg('blog'), runReport('blog', 'failed'), o);
    expect(warnings).toEqual([]);
    const rows = (await scrape(url)).filter(
      (r) => r.name === 'homelab_deploy_last_run_status' && r.value === 1,
    );
    expect(rows.map((r) => [r.labels.project, r.labels.environment, r.labels.status]).sort()).toEqual([
      ['blog', 'homelab', 'failed'],
      ['shop', 'homelab', 'success'],
    ]);
    const hosts = (await scrape(url)).filter((r) => r.name === 'homelab_deploy_host_on_release');
    expect(hosts.map((r) => `${r.labels.project}/${r.labels.host}`).sort()).toEqual([
      'blog/rtx1080',
      'shop/rtx1080',
    ]);
  });

  it('basic auth against a Pushgateway that requires it (bcrypt web config); the password never shows', async () => {
    // bcrypt (cost 4) of "pa55-word", made with python3's crypt.crypt(..., crypt.mksalt(crypt.METHOD_BLOWFISH,
    // rounds=16)); the Pushgateway checks it with Go's bcrypt.
    const hash = '$2b$04$tU2yTT6zilEewY/BOdIp3.L4zfFWhuA58E0Mv1ioa2ZOnEAGuPmzO';
    const { url } = await startPushgateway(`basic_auth_users:\n  pusher: ${hash}\n`);
    const pg = { url, job: 'homelab_deploy', usernameEnv: 'U', passwordEnv: 'P' };
    const group = [
      { grouping: { project: 'shop', environment: 'home' }, text: 'homelab_deploy_auth_probe 1\n' },
    ];
    const redactor = new Redactor();
    expect(await pushGroups(pg, group, { U: 'pusher', P: 'pa55-word' }, redactor)).toEqual([]);
    const auth = { authorization: 'Basic ' + Buffer.from('pusher:pa55-word').toString('base64') };
    expect(
      (await scrape(url, auth)).find((r) => r.name === 'homelab_deploy_auth_probe')?.labels,
    ).toMatchObject({
      job: 'homelab_deploy',
      project: 'shop',
      environment: 'home',
    });
    const wrong = await pushGroups(pg, group, { U: 'pusher', P: 'wrong-pa55' }, redactor);
    expect(wrong).toHaveLength(1);
    expect(wrong[0]).toMatch(
      /^PUT \/metrics\/job\/homelab_deploy\/project\/shop\/environment\/home: HTTP 401/,
    );
    for (const secret of ['pa55-word', 'wrong-pa55', Buffer.from('pusher:wrong-pa55').toString('base64')])
      expect(redactor.redact(`x ${secret} y`)).toBe('x *** y');
    expect(JSON.stringify(wrong)).not.toContain('wrong-pa55');
  });

  it('grouping values with "/" or empty go as @base64 and arrive as the same labels', async () => {
    const { url } = await startPushgateway();
    const pg = { url, job: 'homelab/deploy' };
    const problems = await pushGroups(
      pg,
      [
        {
          grouping: { project: 'a/b', environment: 'prod/eu', host: '' },
          text: 'homelab_deploy_b64_probe 7\n',
        },
      ],
      {},
      new Redactor(),
    );
    expect(problems).toEqual([]);
    const row = (await scrape(url)).find((r) => r.name === 'homelab_deploy_b64_probe');
    expect(row).toMatchObject({
      value: 7,
      labels: { job: 'homelab/deploy', project: 'a/b', environment: 'prod/eu' },
    });
    const group = await readGroup(
      pg,
      { project: 'a/b', environment: 'prod/eu', host: '' },
      {},
      new Redactor(),
    );
    expect(group.samples?.find((x) => x.name === 'homelab_deploy_b64_probe')?.value).toBe(7);
  });

  it('refuses a Pushgateway URL with credentials in it, without repeating them', async () => {
    // Set on the loaded config: the config schema may (and should) refuse such a URL before it gets here.
    const config = {
      ...loadConfig(writeConfig(MINIMAL)),
      metrics: { pushgateway: { url: 'http://pusher:s3cret-in-url@127.0.0.1:9/', job: 'homelab_deploy' } },
    };
    const warnings: string[] = [];
    const redactor = new Redactor();
    await publishOutcome(config, runReport('app', 'success'), {
      env: {},
      redactor,
      warn: (m) => warnings.push(m),
      context: {},
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('the Pushgateway URL carries credentials');
    expect(warnings.join('\n')).not.toContain('s3cret');
    expect(redactor.redact('s3cret-in-url')).toBe('***');
  });
});

/** A one-stage run on rtx1080, as publishOutcome receives it. */
function runReport(project: string, status: 'success' | 'failed'): Report {
  const ok = status === 'success';
  return {
    schema: 1,
    project,
    status,
    phase: 'production',
    systemsDeployed: ok ? ['rtx1080'] : [],
    durationSeconds: 12,
    startedAt: '2026-11-20T10:00:00Z',
    finishedAt: '2026-11-20T10:00:12Z',
    release: { id: 'abcdef012345', commit: 'abcdef0123456789abcdef0123456789abcdef01', ref: 'main' },
    run: {},
    phasesRequested: ['all'],
    audit: [],
    phases: [
      {
        name: 'production',
        kind: 'stage',
        status: ok ? 'ok' : 'failed',
        startedAt: '2026-11-20T10:00:00Z',
        durationMs: 9000,
        hosts: [],
      },
    ],
    hosts: [
      {
        host: 'rtx1080',
        stage: 'production',
        before: 'a',
        after: ok ? 'abcdef012345' : 'a',
        state: ok ? 'new' : 'previous',
      },
    ],
  };
}
