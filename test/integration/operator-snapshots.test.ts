import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import type { HostStatus } from '../../src/targets/inspect';
import { deploy } from '../../src/engine';
import { DeployError } from '../../src/errors';
import { ConnectionPool } from '../../src/remote/pool';
import { Redactor } from '../../src/secrets/redact';
import type { ExecOptions } from '../../src/util/shell';
import { auditSnapshotActions } from '../../src/targets/ssh/snapshot-audit';
import { SNAPSHOT_RECORD } from '../../src/snapshot/command';
import { SnapshotActionError, snapshotProvider } from '../../src/snapshot/provider';
import { useHomelab, type Project } from '../fixtures/pipeline';
import { testContext } from '../helpers/targets';

const env = { ...process.env, HD_TEST_SECRET: 'snapshot-secret' };
const pools: ConnectionPool[] = [];
afterAll(() => Promise.all(pools.map((p) => p.closeAll())));
const lab = useHomelab();

/** Adds a command snapshot provider to one host of the project's config. */
function withSnapshot(host: string, yaml: string) {
  return (c: string) =>
    c.replace(new RegExp(`( {2}${host}:\\n(?: {4}.*\\n)+?)( {4}vars:)`), `$1    snapshot:\n${yaml}$2`);
}

/** Real commands on the host: a snapshot is a directory under `dir`, named after HD_SNAPSHOT. */
function dirSnapshots(dir: string, opts: { keep: number; deleteCmd?: string | null }) {
  const lines = [
    '      command:',
    `        create: "mkdir -p ${dir} && cp -a \\"$HD_PATH/shared\\" ${dir}/$HD_SNAPSHOT"`,
    `        rollback: "touch ${dir}/$HD_SNAPSHOT.rolled-back"`,
  ];
  if (opts.deleteCmd !== null)
    lines.push(`        delete: "${opts.deleteCmd ?? `rm -rf ${dir}/$HD_SNAPSHOT`}"`);
  lines.push(`      keep: ${opts.keep}`);
  return lines.join('\n') + '\n';
}

async function failure(p: Promise<unknown>): Promise<DeployError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DeployError) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

function providerFor(p: Project, host: string, token = 'feedc0de0001') {
  const config = loadConfig(p.configPath);
  const ctx = testContext(config, {
    runToken: token,
    env,
    redactor: new Redactor(),
    commit: '0123456789abcdef0123456789abcdef01234567',
    run: { actor: 'alice' },
  });
  const h = config.hosts[host];
  fs.mkdirSync(path.join(h.path, 'shared'), { recursive: true });
  const shell = { exec: async (script: string, o?: ExecOptions) => (await pool.get(host)).exec(script, o) };
  const pool = new ConnectionPool(config, { env, redactor: ctx.redactor, runToken: token });
  pools.push(pool);
  return { ctx, host: h, shell, provider: snapshotProvider(ctx, h, h.snapshot!, shell) };
}

const recordOf = (p: Project, host: string) =>
  fs
    .readFileSync(path.join(p.paths[host], SNAPSHOT_RECORD), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('command snapshot provider on a real host', () => {
  it('prunes the snapshots it made (from its record on the host) beyond keep, never protected or foreign ones', async () => {
    const dir = fs.mkdtempSync('/tmp/hd-cmd-snaps-');
    const p = await lab.project({ config: withSnapshot('thinkpad', dirSnapshots(dir, { keep: 2 })) });
    const { ctx, host, shell, provider } = providerFor(p, 'thinkpad');
    fs.mkdirSync(path.join(dir, 'manual-before-upgrade'));
    for (const n of ['hd-1', 'hd-2', 'hd-3', 'hd-4']) {
      const a = await provider.create(n);
      expect(a).toMatchObject({
        action: 'snapshot-created',
        host: 'thinkpad',
        provider: 'command',
        name: n,
        ok: true,
      });
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['hd-1', 'hd-2', 'hd-3', 'hd-4', 'manual-before-upgrade']);
    expect(recordOf(p, 'thinkpad').map((r) => [r.event, r.name, r.release, r.token])).toEqual(
      ['hd-1', 'hd-2', 'hd-3', 'hd-4'].map((n) => ['created', n, '0123456789ab', 'feedc0de0001']),
    );

    // keep 2 with hd-4 protected: hd-4 and the newest other one (hd-3) stay.
    const pruned = await provider.prune(['hd-4']);
    expect(pruned.map((a) => [a.action, a.name, a.ok])).toEqual([
      ['snapshot-deleted', 'hd-2', true],
      ['snapshot-deleted', 'hd-1', true],
    ]);
    expect(pruned[0].detail).toBe('command deleted snapshot hd-2');
    expect(fs.readdirSync(dir).sort()).toEqual(['hd-3', 'hd-4', 'manual-before-upgrade']);
    expect(
      recordOf(p, 'thinkpad')
        .slice(4)
        .map((r) => [r.event, r.name]),
    ).toEqual([
      ['deleted', 'hd-2'],
      ['deleted', 'hd-1'],
    ]);
    expect(await provider.prune(['hd-4'])).toEqual([]);

    // What the runner will write to the host's audit log from the returned actions.
    await auditSnapshotActions(ctx, host, shell, pruned);
    const audit = fs
      .readFileSync(path.join(p.paths.thinkpad, '.homelab-deploy', 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.map((a) => [a.action, a.snapshot, a.ok, a.provider, a.actor])).toEqual([
      ['snapshot-deleted', 'hd-2', true, 'command', 'alice'],
      ['snapshot-deleted', 'hd-1', true, 'command', 'alice'],
    ]);
    await ctx.targets.closeAll();
  });

  it('a failing command is an error naming host, key and exit code; a failed delete stays recorded and is retried', async () => {
    const dir = fs.mkdtempSync('/tmp/hd-cmd-snaps-');
    const flag = path.join(dir, 'deny-delete');
    const p = await lab.project({
      config: withSnapshot(
        'rtx1080',
        dirSnapshots(dir, {
          keep: 1,
          deleteCmd: `if [ -f ${flag} ]; then echo busy: $HD_SNAPSHOT >&2; exit 4; fi; rm -rf ${dir}/$HD_SNAPSHOT`,
        }),
      ),
    });
    const { ctx, provider } = providerFor(p, 'rtx1080');
    await provider.create('hd-a');
    await provider.create('hd-b');
    fs.writeFileSync(flag, '');
    const err = await failure(provider.prune(['hd-b']));
    expect(err).toBeInstanceOf(SnapshotActionError);
    expect(err.errorClass).toBe('command-failed');
    expect(err.message).toBe(
      'snapshot delete of hd-a on rtx1080 (hosts.rtx1080.snapshot.command.delete) exited 4, expected 0: busy: hd-a',
    );
    expect((err as SnapshotActionError).actions.map((a) => [a.name, a.ok])).toEqual([['hd-a', false]]);
    expect(fs.existsSync(path.join(dir, 'hd-a'))).toBe(true);
    expect(recordOf(p, 'rtx1080').map((r) => r.event)).toEqual(['created', 'created']);

    fs.rmSync(flag);
    expect((await provider.prune(['hd-b'])).map((a) => a.name)).toEqual(['hd-a']);
    expect(fs.existsSync(path.join(dir, 'hd-a'))).toBe(false);

    // A create that fails is not recorded, so it is never "pruned" later.
    fs.rmSync(path.join(p.paths.rtx1080, 'shared'), { recursive: true });
    const create = await failure(provider.create('hd-c'));
    expect(create.message).toMatch(
      /^snapshot create of hd-c on rtx1080 \(hosts\.rtx1080\.snapshot\.command\.create\) exited 1, expected 0: cp: cannot stat/,
    );
    expect(recordOf(p, 'rtx1080').map((r) => r.name)).not.toContain('hd-c');
    await ctx.targets.closeAll();
  });

  it('a script that exits early or changes directory is still recorded; without a delete command nothing is pruned', async () => {
    const dir = fs.mkdtempSync('/tmp/hd-cmd-snaps-');
    const p = await lab.project({
      config: withSnapshot(
        'vps',
        [
          '      command:',
          `        create: "cd / && mkdir -p ${dir}/$HD_SNAPSHOT && exit 0"`,
          `        rollback: "true"`,
          '      keep: 1',
        ].join('\n') + '\n',
      ),
    });
    const { ctx, provider } = providerFor(p, 'vps');
    for (const n of ['hd-x', 'hd-y', 'hd-z']) await provider.create(n);
    expect(recordOf(p, 'vps').map((r) => r.name)).toEqual(['hd-x', 'hd-y', 'hd-z']);
    expect(await provider.prune(['hd-z'])).toEqual([]);
    expect(fs.readdirSync(dir).sort()).toEqual(['hd-x', 'hd-y', 'hd-z']);
    await ctx.targets.closeAll();
  });

  it('in the pipeline: every deploy snapshots, old ones are pruned to keep, and `status` lists what is kept', async () => {
    const dir = fs.mkdtempSync('/tmp/hd-cmd-snaps-');
    const p = await lab.project({ config: withSnapshot('rtx1080', dirSnapshots(dir, { keep: 2 })) });
    const run = () =>
      deploy({ configPath: p.configPath, phase: 'all', ref: 'HEAD', env, redactor: new Redactor() });
    const releases: string[] = [];
    for (const label of ['v1', 'v2', 'v3']) {
      if (label !== 'v1') p.commit(label);
      const r = await run();
      expect(r.status).toBe('success');
      releases.push(r.release.id);
    }
    const kept = fs.readdirSync(dir).sort();
    expect(kept).toHaveLength(2);
    expect(kept.map((k) => k.slice(3, 15)).sort()).toEqual([releases[1], releases[2]].sort());

    let out = '';
    const code = await main(['status', '--config', p.configPath, '--targets', 'rtx1080', '--json'], {
      out: { write: (t: string) => (out += t) },
      err: { write: () => undefined },
      env,
      signals: new EventEmitter(),
    });
    expect(code).toBe(0);
    const [st] = JSON.parse(out) as HostStatus[];
    expect(st.snapshots?.map((s) => s.name).sort()).toEqual(kept);
    expect(st.rollbackPoints?.[0]).toMatchObject({
      release: releases[2],
      infraSnapshot: expect.stringMatching(/^hd-/),
    });
  });
});
