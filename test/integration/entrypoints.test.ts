import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Report } from '../../src/report/types';
import { MINIMAL, writeConfig } from '../fixtures/config';
import { HOSTS, makeProject } from '../fixtures/pipeline';
import { DIST_DIR } from '../helpers/action-runner';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';

const root = path.join(__dirname, '..', '..');
const node = (args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}) =>
  spawnSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    env: opts.env ?? process.env,
    timeout: opts.timeout ?? 60_000,
  });

describe('the committed CLI bundle', () => {
  const cli = path.join(DIST_DIR, 'cli', 'index.js');

  it('validate: accepts a good config without connecting anywhere', () => {
    const r = node([cli, 'validate', '--config', writeConfig(MINIMAL)]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/valid \(3 hosts, stages staging → production → public, 6 phases\)/);
  });

  it('validate: lists every problem with file, path and line, exit 2', () => {
    const file = writeConfig(
      MINIMAL.replace('stage: staging }', 'stage: staging, adress: x }').replace('version: 1', 'version: 2'),
    );
    const r = node([cli, 'validate', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`2 problems in ${file}:`);
    expect(r.stderr).toContain(`${file}:1:10: version:`);
    expect(r.stderr).toContain(
      `${file}:6:52: hosts.thinkpad.adress: unknown key "adress"; did you mean "address"?`,
    );
  });

  it('plan: prints phase × host steps for one phase, connects nowhere (the hosts are documentation addresses)', () => {
    const r = node([cli, 'plan', '--config', writeConfig(MINIMAL), '--phase', 'public']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('1. preflight [vps]');
    expect(r.stdout).toContain('3. public [vps]');
    expect(r.stdout).toContain('retry: 3 attempts, backoff 5.0s ×2');
    // production rolls back everything on failure, so its job also locks the staging host it may roll back.
    const prod = node([cli, 'plan', '--config', writeConfig(MINIMAL), '--phase', 'production']);
    expect(prod.stdout).toContain('1. preflight [rtx1080, thinkpad]');
    const json = JSON.parse(node([cli, 'plan', '--config', writeConfig(MINIMAL), '--json']).stdout) as {
      name: string;
    }[];
    expect(json.map((p) => p.name)).toEqual([
      'preflight',
      'snapshot',
      'staging',
      'production',
      'public',
      'verify',
    ]);
  });

  it('rejects an unknown phase', () => {
    const bad = node([cli, 'plan', '--config', writeConfig(MINIMAL), '--phase', 'prod']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      'phase "prod" is not a phase of this config; expected "all" or some of: preflight, secrets, snapshot, staging, production, public, verify',
    );
  });

  describe('hostile refs against live SSH hosts', () => {
    let sandbox: SshSandbox;
    beforeAll(async () => {
      // VERBOSE: sshd logs every connection, so the test can tell "refused before connecting" from "connected".
      sandbox = await startSshSandbox({ names: [...HOSTS], logLevel: 'VERBOSE' });
    }, 60_000);
    afterAll(async () => {
      await sandbox?.stop();
    });

    it('exits 2 before connecting anywhere: no marker file, nothing in any deploy path, no SSH connection', async () => {
      const project = await makeProject(sandbox);
      const env = { ...process.env, HD_TEST_SECRET: `ep-${randomBytes(4).toString('hex')}` };
      const marker = `/tmp/hd-x-${randomBytes(4).toString('hex')}`;
      const refs = [
        `main;touch ${marker}`,
        `$(touch ${marker})`,
        `\`touch ${marker}\``,
        '-ohno',
        `main\ntouch ${marker}`,
        `--upload-pack=touch ${marker}`,
      ];
      const logs = () => HOSTS.map((h) => sandbox.log(h).length);
      const before = logs();
      for (const ref of refs) {
        const r = node([cli, 'run', '--config', project.configPath, `--ref=${ref}`], { env });
        expect({ ref, status: r.status }).toEqual({ ref, status: 2 });
        expect(r.stderr).toContain(`ref ${JSON.stringify(ref)} rejected`);
      }
      expect(fs.existsSync(marker)).toBe(false);
      for (const h of HOSTS)
        expect({ h, exists: fs.existsSync(project.paths[h]) }).toEqual({ h, exists: false });
      await new Promise((r) => setTimeout(r, 300));
      HOSTS.forEach((h, i) => expect(sandbox.log(h).slice(before[i])).not.toContain('Connection from'));

      // The same command with a plain ref does reach the hosts and write there, so the checks above can fail.
      const reportFile = path.join(project.repo, 'preflight-report.json');
      const ok = node(
        [
          cli,
          'run',
          '--config',
          project.configPath,
          '--ref=main',
          '--phase',
          'preflight',
          '--report-file',
          reportFile,
        ],
        { env },
      );
      expect(ok.status).toBe(0);
      // The bundle renders that report as a page (the workflows' html jobs run exactly this).
      const html = path.join(project.repo, 'report.html');
      const page = node([cli, 'report', reportFile, '--html', html]);
      expect({ status: page.status, stderr: page.stderr }).toEqual({
        status: 0,
        stderr: expect.stringMatching(/^wrote the HTML report to .*report\.html \(\d+ bytes\)\n$/),
      });
      expect(fs.readFileSync(html, 'utf8')).toMatch(/^<!doctype html>[\s\S]*thinkpad[\s\S]*<\/html>\s*$/i);
      for (const h of HOSTS) {
        expect(fs.existsSync(path.join(project.paths[h], '.homelab-deploy', 'audit.log'))).toBe(true);
        expect(fs.existsSync(path.join(project.paths[h], '.homelab-deploy', 'lock'))).toBe(false); // released
      }
      HOSTS.forEach((h, i) => expect(sandbox.log(h).slice(before[i])).toContain('Connection from'));
    }, 120_000);
  });
});

describe("npm run demo (the README's first command)", () => {
  it('runs every phase on three local SSH hosts and shows the VPS rule with --fail vps --json', () => {
    const r = node([path.join(root, 'dist', 'demo', 'index.js'), '--fail', 'vps', '--json'], {
      timeout: 120_000,
    });
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('partial_success');
    expect(report.systemsDeployed).toEqual(['thinkpad', 'rtx1080']);
    expect(report.hosts.find((h) => h.host === 'vps')?.rollback?.ok).toBe(true);
    expect(r.stderr).toContain('Failure rule for a vps failure: partial_success. Result: partial_success ✔');
    expect(r.stderr).toMatch(/▶ secrets/);
    // The demo's secret is random; make sure no .env value line leaked into progress or report.
    expect(r.stdout + r.stderr).not.toMatch(/demo-secret-[a-z0-9]+/);
  }, 150_000);
});
