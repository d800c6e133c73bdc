import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { HostConfig } from '../../src/config/types';
import { DeployError } from '../../src/errors';
import { Redactor } from '../../src/secrets/redact';
import { undoEnvScript } from '../../src/targets/ssh/scripts/release';
import { startSshSandbox, type SshSandbox } from '../helpers/sshd';
import { testContext, type TestContext } from '../helpers/targets';

/**
 * What a deploy records on a host with SFTP requests alone, against OpenSSH's SFTP server: the env file (written,
 * read back, the old file kept by a hard link, this run's undo recorded, renamed over, the folder synced) and the
 * rollback point (renamed in, audited); and, where the server refuses a request they need, the same records made
 * by a shell on the host. What each leaves is read from the host's disk, and the undo the pipeline runs for an
 * aborted run is run on it.
 */
const sandboxes: SshSandbox[] = [];
/** Small file systems mounted for a test: unmounted before the sandboxes' folders are removed. */
const mounts: string[] = [];
afterAll(async () => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  await Promise.all(sandboxes.map((s) => s.stop()));
});

async function hostOn(opts: { sftpSubsystem?: string; diskKib?: number }): Promise<{
  sb: SshSandbox;
  root: string;
  context: (token: string, release?: string) => TestContext;
}> {
  const sb = await startSshSandbox({ names: ['env'], sftpSubsystem: opts.sftpSubsystem });
  sandboxes.push(sb);
  const h = sb.host('env');
  const root = path.join(h.root, 'app');
  if (opts.diskKib) {
    fs.mkdirSync(root);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${opts.diskKib}k`, 'tmpfs', root], {
      encoding: 'utf8',
    });
    if (m.status !== 0) throw new Error(`mounting a ${opts.diskKib} KiB tmpfs at ${root}: ${m.stderr}`);
    mounts.push(root);
  }
  fs.mkdirSync(path.join(root, 'shared'), { recursive: true });
  fs.mkdirSync(path.join(root, '.homelab-deploy'));
  const configPath = path.join(h.root, 'homelab-deploy.yml');
  fs.writeFileSync(
    configPath,
    `version: 1
project: envswap
defaults:
  ssh: { user: ${sb.user}, key: ${sb.userKeyPath}, known_hosts: ${sb.knownHostsPath}, connect_timeout: 5s }
  deploy: { strategy: command, up: "true", down: "true" }
hosts:
  h1: { address: ${h.address}, ssh: { port: ${h.port} }, path: ${root} }
secrets: { file: .env, keys: [HD_SWAP_SECRET] }
stages:
  - { name: fleet, hosts: [h1] }
`,
  );
  const context = (token: string, release = 'a'.repeat(40)) =>
    testContext(loadConfig(configPath), {
      runToken: token,
      env: {},
      redactor: new Redactor(),
      commit: release,
    });
  return { sb, root, context };
}

const listing = (dir: string) => fs.readdirSync(dir).sort();

describe('the env file swapped over SFTP', () => {
  let root: string;
  let context: (token: string, release?: string) => TestContext;
  beforeAll(async () => {
    ({ root, context } = await hostOn({}));
  }, 60_000);

  it('keeps the old file as a hard link for the release, records the undo, and the undo puts it back', async () => {
    const shared = path.join(root, 'shared');
    const env = path.join(shared, '.env');
    fs.writeFileSync(env, 'HD_SWAP_SECRET=old\n', { mode: 0o600 });
    const oldInode = fs.statSync(env).ino;
    const c = context('swaptoken001');
    try {
      const t = c.targets.get('h1');
      const first = await t.writeSecrets?.('.env', 'HD_SWAP_SECRET=new\n');
      expect(first?.state).toBe('written');
      expect(first?.changed).toEqual(['HD_SWAP_SECRET']);
      expect(first?.steps?.steps.map((s) => [s.name, s.ok, s.command])).toEqual([
        ['env-swap', true, 'write, read back and rename shared/.env over SFTP'],
      ]);
      expect(fs.readFileSync(env, 'utf8')).toBe('HD_SWAP_SECRET=new\n');
      expect(fs.statSync(env).mode & 0o777).toBe(0o600);
      const saved = path.join(shared, `.env.before-${c.release.id}`);
      // The release's copy is the old file itself, under a second name: no data copied.
      expect(fs.statSync(saved).ino).toBe(oldInode);
      expect(fs.readFileSync(saved, 'utf8')).toBe('HD_SWAP_SECRET=old\n');
      expect(listing(shared)).toEqual([
        '.env',
        `.env.before-${c.release.id}`,
        '.env.undo-saved-swaptoken001',
      ]);

      // A second write by the same run keeps the undo of the first: it leads back to before the run.
      expect((await t.writeSecrets?.('.env', 'HD_SWAP_SECRET=newer\n'))?.state).toBe('written');
      expect(fs.readFileSync(env, 'utf8')).toBe('HD_SWAP_SECRET=newer\n');
      expect(fs.readFileSync(saved, 'utf8')).toBe('HD_SWAP_SECRET=old\n');
      expect(listing(shared)).toEqual([
        '.env',
        `.env.before-${c.release.id}`,
        '.env.undo-saved-swaptoken001',
      ]);
      // Unchanged content is not written again.
      expect((await t.writeSecrets?.('.env', 'HD_SWAP_SECRET=newer\n'))?.state).toBe('unchanged');

      const undo = spawnSync('/bin/sh', ['-c', undoEnvScript(c, c.config.targets.h1 as HostConfig, '.env')], {
        encoding: 'utf8',
      });
      expect([undo.status, undo.stdout.trim()]).toEqual([0, 'restored']);
      expect(fs.readFileSync(env, 'utf8')).toBe('HD_SWAP_SECRET=old\n');
      expect(listing(shared)).toEqual(['.env', `.env.before-${c.release.id}`]);
    } finally {
      await c.targets.closeAll();
    }
  });

  it('records that there was no env file, and the undo removes the one it wrote', async () => {
    const shared = path.join(root, 'shared');
    for (const f of fs.readdirSync(shared)) fs.rmSync(path.join(shared, f));
    const c = context('swaptoken002', 'b'.repeat(40));
    try {
      expect((await c.targets.get('h1').writeSecrets?.('.env', 'HD_SWAP_SECRET=first\n'))?.state).toBe(
        'written',
      );
      expect(listing(shared)).toEqual(['.env', '.env.absent-swaptoken002']);
      const undo = spawnSync('/bin/sh', ['-c', undoEnvScript(c, c.config.targets.h1 as HostConfig, '.env')], {
        encoding: 'utf8',
      });
      expect([undo.status, undo.stdout.trim()]).toEqual([0, 'restored']);
      expect(listing(shared)).toEqual([]);
    } finally {
      await c.targets.closeAll();
    }
  });

  it('a later run of the same release keeps the release’s copy and undoes by a link of its own', async () => {
    const shared = path.join(root, 'shared');
    for (const f of fs.readdirSync(shared)) fs.rmSync(path.join(shared, f));
    const release = 'c'.repeat(40);
    fs.writeFileSync(path.join(shared, '.env'), 'HD_SWAP_SECRET=v1\n', { mode: 0o600 });
    const first = context('swaptoken003', release);
    const second = context('swaptoken004', release);
    try {
      await first.targets.get('h1').writeSecrets?.('.env', 'HD_SWAP_SECRET=v2\n');
      const replaced = fs.statSync(path.join(shared, '.env')).ino;
      await second.targets.get('h1').writeSecrets?.('.env', 'HD_SWAP_SECRET=v3\n');
      const id = first.release.id;
      expect(listing(shared)).toEqual([
        '.env',
        `.env.before-${id}`,
        '.env.undo-saved-swaptoken003',
        '.env.undo-swaptoken004',
      ]);
      expect(fs.readFileSync(path.join(shared, `.env.before-${id}`), 'utf8')).toBe('HD_SWAP_SECRET=v1\n');
      expect(fs.statSync(path.join(shared, '.env.undo-swaptoken004')).ino).toBe(replaced);
    } finally {
      await Promise.all([first.targets.closeAll(), second.targets.closeAll()]);
    }
  });
});

/** The rollback point's record and the audit lines on the host after `snapshot`. */
async function snapshotOn(c: TestContext, root: string, previous: string | null) {
  const out = await c.targets.get('h1').snapshot(previous, { infra: false });
  const record = fs.readFileSync(
    path.join(root, '.homelab-deploy', `rollback-point-${c.release.id}.json`),
    'utf8',
  );
  const audit = fs
    .readFileSync(path.join(root, '.homelab-deploy', 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { out, record, audit };
}

describe('the rollback point recorded over SFTP', () => {
  let root: string;
  let context: (token: string, release?: string) => TestContext;
  beforeAll(async () => {
    ({ root, context } = await hostOn({}));
  }, 60_000);

  it('is renamed in whole, audited, and read back by a later job', async () => {
    const c = context('pointtoken01', 'd'.repeat(40));
    try {
      const { out, record, audit } = await snapshotOn(c, root, 'olderrelease');
      expect(out.point).toMatchObject({
        release: c.release.id,
        previous: 'olderrelease',
        token: 'pointtoken01',
      });
      expect(out.steps?.steps.map((s) => [s.name, s.ok, s.output])).toEqual([
        ['rollback-point', true, undefined],
      ]);
      expect(JSON.parse(record)).toEqual(out.point);
      expect(record.endsWith('}\n')).toBe(true);
      expect(audit).toEqual([
        expect.objectContaining({
          action: 'snapshot',
          kind: 'release',
          previous: 'olderrelease',
          token: 'pointtoken01',
        }),
      ]);
      expect(fs.readdirSync(path.join(root, '.homelab-deploy')).filter((f) => f.includes('.tmp'))).toEqual(
        [],
      );
      // A later job of the same release keeps the point and reads it.
      const later = context('pointtoken02', 'd'.repeat(40));
      try {
        expect((await later.targets.get('h1').snapshot(undefined, { infra: false })).point).toEqual(
          out.point,
        );
        expect(await later.targets.get('h1').readRollbackPoint()).toEqual(out.point);
      } finally {
        await later.targets.closeAll();
      }
    } finally {
      await c.targets.closeAll();
    }
  });
});

describe('a server that refuses hard links and posix-rename', () => {
  let root: string;
  let context: (token: string, release?: string) => TestContext;
  beforeAll(async () => {
    ({ root, context } = await hostOn({ sftpSubsystem: 'internal-sftp -P hardlink,posix-rename' }));
  }, 60_000);

  it('gets the swap finished by the shell on the host, with the same records', async () => {
    const shared = path.join(root, 'shared');
    fs.writeFileSync(path.join(shared, '.env'), 'HD_SWAP_SECRET=old\n', { mode: 0o600 });
    const c = context('swaptoken005');
    try {
      const r = await c.targets.get('h1').writeSecrets?.('.env', 'HD_SWAP_SECRET=new\n');
      expect(r?.state).toBe('written');
      expect(r?.steps?.steps.map((s) => [s.name, s.ok, s.command])).toEqual([
        ['env-swap', true, 'verify and rename .env'],
      ]);
      expect(fs.readFileSync(path.join(shared, '.env'), 'utf8')).toBe('HD_SWAP_SECRET=new\n');
      expect(listing(shared)).toEqual([
        '.env',
        `.env.before-${c.release.id}`,
        '.env.undo-saved-swaptoken005',
      ]);
      expect(fs.readFileSync(path.join(shared, `.env.before-${c.release.id}`), 'utf8')).toBe(
        'HD_SWAP_SECRET=old\n',
      );
    } finally {
      await c.targets.closeAll();
    }
  });

  it('gets the rollback point recorded by the shell, the same record and audit line', async () => {
    const c = context('pointtoken03', 'e'.repeat(40));
    try {
      const { out, record, audit } = await snapshotOn(c, root, null);
      expect(out.point).toMatchObject({ release: c.release.id, previous: null, token: 'pointtoken03' });
      expect(out.steps?.steps.map((s) => [s.name, s.ok, s.command])).toEqual([
        ['rollback-point', true, `record .homelab-deploy/rollback-point-${c.release.id}.json`],
      ]);
      // The shell ran: its step printed the record it wrote (the SFTP requests print nothing).
      expect(out.steps?.steps[0].output?.trim()).toBe(record.trim());
      expect(JSON.parse(record)).toEqual(out.point);
      expect(audit.filter((a) => a.token === 'pointtoken03')).toEqual([
        expect.objectContaining({ action: 'snapshot', kind: 'release', previous: null }),
      ]);
    } finally {
      await c.targets.closeAll();
    }
  });
});

describe('a host whose disk is full', () => {
  let root: string;
  let context: (token: string, release?: string) => TestContext;
  beforeAll(async () => {
    ({ root, context } = await hostOn({ diskKib: 256 }));
  }, 60_000);

  it('refuses to record the rollback point with the free space it found, and leaves no temp file', async () => {
    // Fill the file system to its last byte.
    const fill = path.join(root, 'fill.bin');
    const fd = fs.openSync(fill, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(4096));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    const c = context('fulltoken001', 'f'.repeat(40));
    try {
      const err = await c.targets
        .get('h1')
        .snapshot('olderrelease', { infra: false })
        .then(
          () => undefined,
          (e: unknown) => e as DeployError,
        );
      expect(err).toBeInstanceOf(DeployError);
      expect(err?.errorClass).toBe('precondition');
      expect(err?.message).toMatch(
        new RegExp(
          `^no space left on h1: .* free under ${root}, recording \\.homelab-deploy/rollback-point-`,
        ),
      );
      expect(fs.readdirSync(path.join(root, '.homelab-deploy')).filter((f) => f.includes('.tmp'))).toEqual(
        [],
      );
      expect(fs.existsSync(path.join(root, '.homelab-deploy', `rollback-point-${c.release.id}.json`))).toBe(
        false,
      );
    } finally {
      await c.targets.closeAll();
    }
  });
});
