import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { releaseIdFor } from '../../src/deploy/layout';
import type { Report } from '../../src/report/types';
import { runAction } from '../helpers/action-runner';
import { git, makeProject, type Project } from '../fixtures/pipeline';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

const SECRET = 'action-s3cret-value';
let sandbox: SshSandbox;
const projects: Project[] = [];
let api: http.Server;
let apiUrl: string;
const calls: { method: string; path: string; body: Record<string, unknown>; auth?: string }[] = [];

beforeAll(async () => {
  sandbox = await startSshSandbox({ names: ['thinkpad', 'rtx1080', 'vps'] });
  api = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      calls.push({
        method: req.method ?? '',
        path: req.url ?? '',
        body: body ? JSON.parse(body) : {},
        auth: req.headers.authorization,
      });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 1 }));
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
}, 60_000);
afterAll(async () => {
  for (const p of projects) p.stopServices();
  api?.close();
  await sandbox?.stop();
});

function github(p: Project) {
  return {
    GITHUB_WORKSPACE: p.repo,
    GITHUB_REPOSITORY: 'jjeco/homelab',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_ACTOR: 'octocat',
    GITHUB_API_URL: apiUrl,
    HD_TEST_SECRET: SECRET,
  };
}

describe('the bundled action (node dist/index.js)', () => {
  it('deploys all phases, sets every output, writes the job summary and commit statuses', async () => {
    const p = await makeProject(sandbox);
    projects.push(p);
    const sha = git(p.repo, ['rev-parse', 'HEAD']);
    calls.length = 0;
    const run = await runAction(
      {
        config: 'homelab-deploy.yml',
        phase: 'all',
        ref: 'main',
        'github-token': 'ghs_testtoken123',
        statuses: 'true',
        environment: 'production',
      },
      github(p),
    );
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('success');
    expect(run.outputs.phase).toBe('verify');
    expect(JSON.parse(run.outputs['systems-deployed'])).toEqual(['thinkpad', 'rtx1080', 'vps']);
    expect(Number(run.outputs['duration-seconds'])).toBeGreaterThan(0);
    const report = JSON.parse(run.outputs.report) as Report;
    expect(report.release.commit).toBe(sha);
    expect(report.run).toMatchObject({
      actor: 'octocat',
      url: 'https://github.com/jjeco/homelab/actions/runs/4242',
    });
    expect(JSON.parse(fs.readFileSync(run.outputs['report-file'], 'utf8')).status).toBe('success');
    expect(run.summary).toContain('## ✅ Deploy succeeded');
    expect(run.summary).toContain('```mermaid');
    for (const h of ['thinkpad', 'rtx1080', 'vps'])
      expect(run.summary).toMatch(new RegExp(`\\| ${h} \\| \\w+ \\| — → ${report.release.id} \\|`));
    expect(run.stdout).toContain('::group::staging [thinkpad]');
    // The runner swallows ::add-mask:: commands; everything else must be free of the secret.
    const visible = run.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n');
    expect(visible + run.summary + JSON.stringify(run.outputs)).not.toContain(SECRET);
    expect(run.stdout).toContain(`::add-mask::${SECRET}`);
    expect(run.state.runToken).toMatch(/^[0-9a-f]{12}$/);
    // Commit statuses: pending then success per phase, and a final result, all on the resolved SHA.
    const statuses = calls.filter((c) => c.path === `/repos/jjeco/homelab/statuses/${sha}`);
    expect(statuses.map((c) => `${c.body.context}:${c.body.state}`)).toEqual(
      expect.arrayContaining([
        'homelab-deploy/production/staging:pending',
        'homelab-deploy/production/staging:success',
        'homelab-deploy/production/verify:success',
        'homelab-deploy/production/result:success',
      ]),
    );
    expect(
      statuses.every(
        (c) =>
          c.auth === 'Bearer ghs_testtoken123' &&
          c.body.target_url === 'https://github.com/jjeco/homelab/actions/runs/4242',
      ),
    ).toBe(true);
    expect(statuses.every((c) => String(c.body.description).length <= 140)).toBe(true);
  });

  it('fails the step for rolled_back, with outputs and a summary that say what happened', async () => {
    const p = await makeProject(sandbox);
    projects.push(p);
    expect((await runAction({ config: 'homelab-deploy.yml', statuses: 'false' }, github(p))).code).toBe(0);
    const v2 = releaseIdFor(p.commit('v2'));
    p.fault('rtx1080', v2);
    const run = await runAction({ config: 'homelab-deploy.yml', statuses: 'false', ref: 'HEAD' }, github(p));
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled_back');
    expect(run.outputs.phase).toBe('production');
    expect(run.stdout).toMatch(/::error::homelab-deploy rolled_back in production: \[health-failed\]/);
    expect(run.summary).toContain('## ↩️ Deploy rolled back');
    expect(run.summary).toContain('↩️ rolled back');
    expect(p.current('rtx1080')).not.toBe(v2);
  });

  it('a deploy whose status calls all fail still reports its true result', async () => {
    const broken = http.createServer((_req, res) => {
      res.writeHead(502);
      res.end('bad gateway');
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    const p = await makeProject(sandbox);
    projects.push(p);
    const run = await runAction(
      { config: 'homelab-deploy.yml', 'github-token': 'ghs_x', statuses: 'true' },
      { ...github(p), GITHUB_API_URL: `http://127.0.0.1:${(broken.address() as AddressInfo).port}` },
    );
    broken.close();
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('success');
    expect(run.stdout.match(/::warning::GitHub status update failed after retries/g)).toHaveLength(1);
  });

  it('rejects bad inputs with a message that quotes them', async () => {
    const p = await makeProject(sandbox);
    projects.push(p);
    const run = await runAction(
      { config: 'homelab-deploy.yml', 'lock-wait': 'forever', statuses: 'false' },
      github(p),
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('Input "lock-wait" must be a duration such as 0, 30s or 5m, got "forever".');
    const badBool = await runAction({ config: 'homelab-deploy.yml', 'dry-run': 'yes' }, github(p));
    expect(badBool.stdout).toContain('Input "dry-run" must be "true" or "false", got "yes".');
  });

  it('post step releases the locks of a main step that was killed', async () => {
    const p = await makeProject(sandbox);
    projects.push(p);
    const token = 'feedfacecafe';
    for (const h of ['thinkpad', 'vps']) {
      fs.mkdirSync(path.join(p.paths[h], '.homelab-deploy', 'lock'), { recursive: true });
      fs.writeFileSync(
        path.join(p.paths[h], '.homelab-deploy', 'lock', 'owner.json'),
        JSON.stringify({ token, commit: '0'.repeat(40), phase: 'staging', startedAt: 'x' }) + '\n',
      );
    }
    // Someone else's lock on rtx1080 must survive the cleanup.
    fs.mkdirSync(path.join(p.paths.rtx1080, '.homelab-deploy', 'lock'), { recursive: true });
    fs.writeFileSync(
      path.join(p.paths.rtx1080, '.homelab-deploy', 'lock', 'owner.json'),
      JSON.stringify({ token: 'someoneelse1', commit: '0'.repeat(40) }) + '\n',
    );
    const post = await runAction({ config: 'homelab-deploy.yml' }, github(p), {
      isPost: 'true',
      runToken: token,
      configPath: p.configPath,
      lockedHosts: JSON.stringify(['thinkpad', 'rtx1080', 'vps']),
    });
    expect(post.code).toBe(0);
    expect(post.stdout).toContain('released the deploy lock on thinkpad');
    expect(fs.existsSync(path.join(p.paths.thinkpad, '.homelab-deploy', 'lock'))).toBe(false);
    expect(fs.existsSync(path.join(p.paths.vps, '.homelab-deploy', 'lock'))).toBe(false);
    expect(fs.existsSync(path.join(p.paths.rtx1080, '.homelab-deploy', 'lock'))).toBe(true);
  });
});
