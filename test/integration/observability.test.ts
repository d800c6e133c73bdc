import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { deploy } from '../../src/engine';
import { releaseIdFor } from '../../src/deploy/layout';
import { pushGroups } from '../../src/metrics/publish';
import { Redactor } from '../../src/secrets/redact';
import { freePort, makeProject, type Project } from '../fixtures/pipeline';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

const PGW = '/usr/bin/prometheus-pushgateway';
let sandbox: SshSandbox;
let pgw: ChildProcess;
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

beforeAll(async () => {
  ensurePushgateway();
  sandbox = await startSshSandbox({ names: ['thinkpad', 'rtx1080', 'vps'] });
  const port = await freePort();
  // Debian's build persists to /var/lib/prometheus by default; a private file keeps runs apart.
  const data = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hd-pgw-')), 'pushgateway.data');
  pgw = spawn(PGW, [`--web.listen-address=127.0.0.1:${port}`, `--persistence.file=${data}`], {
    stdio: 'ignore',
  });
  pgwUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${pgwUrl}/-/ready`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
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
  pgw?.kill();
  hook?.close();
  await sandbox?.stop();
});

/** Pushgateway's /metrics as [name, labels, value] rows. */
async function scrape(): Promise<{ name: string; labels: Record<string, string>; value: number }[]> {
  const text = await (await fetch(`${pgwUrl}/metrics`)).text();
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

  it('sends basic auth to a Pushgateway that wants it, and never logs the password', async () => {
    let auth: string | undefined;
    const srv = http.createServer((req, res) => {
      auth = req.headers.authorization;
      req.resume();
      req.on('end', () => {
        res.writeHead(auth ? 200 : 401);
        res.end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const redactor = new Redactor();
    const problems = await pushGroups(
      { url, job: 'homelab_deploy', usernameEnv: 'U', passwordEnv: 'P' },
      [{ grouping: { environment: 'prod/eu', host: 'vps' }, text: 'x 1\n' }],
      { U: 'pusher', P: 'pa55-word' },
      redactor,
    );
    expect(problems).toEqual([]);
    expect(auth).toBe('Basic ' + Buffer.from('pusher:pa55-word').toString('base64'));
    expect(redactor.redact('pa55-word')).toBe('***');
    srv.close();
  });
});
