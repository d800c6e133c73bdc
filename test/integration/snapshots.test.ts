import * as fs from 'node:fs';
import * as path from 'node:path';
import { releaseIdFor } from '../../src/run/release';
import { deploy } from '../../src/engine';
import { Redactor } from '../../src/secrets/redact';
import { startFakeProxmox } from '../helpers/fake-proxmox';
import { useHomelab, type Project } from '../fixtures/pipeline';

const TOKEN = 'root@pam!deploy=7d3c0b1e-1111-4222-8333-444455556666';
const env = { ...process.env, HD_TEST_SECRET: 'snap-secret', PVE_TOKEN: TOKEN };
const lab = useHomelab();

const run = (p: Project) =>
  deploy({ configPath: p.configPath, phase: 'all', ref: 'HEAD', env, redactor: new Redactor() });

describe('infrastructure snapshots in the pipeline', () => {
  it('command provider: taken before production, rolled back with it when production fails', async () => {
    const snaps = fs.mkdtempSync('/tmp/hd-snaps-');
    const p = await lab.project({
      config: (c) =>
        c.replace(
          /( {2}rtx1080:\n(?: {4}.*\n)+?)( {4}vars:)/,
          `$1    snapshot:\n      command:\n        create: "mkdir -p ${snaps} && cp -a \\"$HD_PATH/shared\\" ${snaps}/$HD_SNAPSHOT"\n        rollback: "touch ${snaps}/$HD_SNAPSHOT.rolled-back"\n$2`,
        ),
    });
    expect((await run(p)).status).toBe('success');
    const v1 = p.current('rtx1080');
    const v2 = releaseIdFor(p.commit('v2'));
    p.fault('rtx1080', v2);
    const report = await run(p);
    expect(report.status).toBe('rolled_back');
    const rtx = report.hosts.find((h) => h.host === 'rtx1080');
    expect(rtx?.rollback).toMatchObject({
      ok: true,
      to: v1,
      infraSnapshot: expect.stringMatching(new RegExp(`^hd-${v2}-`)),
    });
    expect(fs.existsSync(path.join(snaps, `${rtx?.rollback?.infraSnapshot}.rolled-back`))).toBe(true);
    expect(fs.existsSync(path.join(snaps, rtx?.rollback?.infraSnapshot as string, '.env'))).toBe(true);
    expect(
      report.audit.filter((a) => a.action === 'snapshot' && a.host === 'rtx1080').map((a) => a.detail),
    ).toContain(`command snapshot ${rtx?.rollback?.infraSnapshot}`);
  });

  it('Proxmox provider: snapshot per deploy with task polling; a failing snapshot aborts with nothing changed', async () => {
    const pve = await startFakeProxmox({ token: TOKEN, vmid: 102 });
    try {
      const p = await lab.project({
        config: (c) =>
          c.replace(
            /( {2}vps:\n(?: {4}.*\n)+?)( {4}vars:)/,
            `$1    snapshot: { proxmox: { api: "${pve.url}", node: pve, vmid: 102, token_env: PVE_TOKEN, fingerprint: "${pve.fingerprint}" }, keep: 2 }\n$2`,
          ),
      });
      const first = await run(p);
      expect(first.status).toBe('success');
      const created = pve.requests.filter(
        (r) => r.method === 'POST' && r.path.endsWith('/qemu/102/snapshot'),
      );
      expect(created).toHaveLength(1);
      expect(new URLSearchParams(created[0].body).get('snapname')).toMatch(
        new RegExp(`^hd-${first.release.id}-[0-9a-f]{12}$`),
      );
      expect(pve.requests.every((r) => r.auth === `PVEAPIToken=${TOKEN}`)).toBe(true);
      expect(JSON.stringify(first)).not.toContain(TOKEN.split('=')[1]);

      const v1 = p.current('vps');
      p.commit('v2');
      pve.state.failNext = {
        status: 500,
        message: "VM 102 qmp command 'savevm-start' failed - unable to connect",
      };
      const failed = await run(p);
      expect(failed.status).toBe('aborted');
      expect(failed.phase).toBe('snapshot');
      expect(failed.error?.message).toContain('HTTP 500 VM 102 qmp command');
      for (const h of ['thinkpad', 'rtx1080', 'vps']) {
        expect(p.current(h)).toBe(v1);
        expect(fs.existsSync(path.join(p.paths[h], '.homelab-deploy', 'lock'))).toBe(false);
      }
    } finally {
      await pve.close();
    }
  });
});
