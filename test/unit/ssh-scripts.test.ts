import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { HostConfig } from '../../src/config/types';
import { stepsScript, subshellReason, type Step } from '../../src/remote/steps';
import { makeContext, type RunContext } from '../../src/run/context';
import { Redactor } from '../../src/secrets/redact';
import { lockOwner } from '../../src/targets/ssh/scripts/common';
import { envSwapChanges, envSwapStep, envUndoNames } from '../../src/targets/ssh/scripts/env';
import { heartbeatScript, lockScript, releaseLockScript } from '../../src/targets/ssh/scripts/lock';
import { preflightSteps } from '../../src/targets/ssh/scripts/preflight';
import {
  deploySteps,
  handOverScript,
  pruneScript,
  readCurrentScript,
  rollbackPointScript,
  rollbackSteps,
  undoEnvScript,
} from '../../src/targets/ssh/scripts/release';
import { freeSpaceScript, repairScript, waitGoneScript } from '../../src/targets/ssh/scripts/repair';
import { writeConfig } from '../fixtures/config';

/**
 * The host scripts as text and as run by the host's shell (dash, here on this machine, without SSH): every
 * pre-flight and deploy step runs in the script's own shell (a subshell would cost a process per step), every
 * script parses, and the lock record's bookkeeping done with shell builtins keeps the record whole.
 */
let root: string;
let host: HostConfig;
let run: RunContext;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-scripts-'));
  const file = writeConfig(`version: 1
project: app
defaults:
  ssh: { user: deploy, key: ~/.ssh/id_ed25519, known_hosts: known_hosts }
  deploy: { strategy: command, up: "true", down: "true" }
hosts:
  h1: { address: 192.0.2.10, path: ${path.join(root, 'h1')} }
secrets: { file: .env, keys: [X] }
stages:
  - { name: fleet, hosts: [h1] }
`);
  const config = loadConfig(file);
  host = config.targets.h1 as HostConfig;
  run = makeContext(config, { runToken: 'unit00000001', env: {}, redactor: new Redactor() });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const sh = (script: string) => spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
const owner = () => JSON.stringify(lockOwner(run, 'h1', 'fleet'));

describe('host scripts', () => {
  it('runs every pre-flight and deploy step in the script’s own shell', () => {
    const groups: Step[][] = [
      preflightSteps(run, host, owner()),
      deploySteps(run, host, 'fleet', null),
      deploySteps(run, host, 'fleet', 'abc123abc123', { envLinked: true, currentLinked: true }),
    ];
    for (const steps of groups) {
      steps.forEach((s, i) =>
        expect([s.name, subshellReason(s, { last: i === steps.length - 1 })]).toEqual([s.name, undefined]),
      );
      expect(stepsScript(steps, '@@m@@')).not.toContain('( __hd_i=;');
    }
    // The rollback's `up` is followed by its log step: its exports must not reach it.
    const rb = rollbackSteps(run, host, 'fleet', run.release.id);
    expect(subshellReason(rb.find((s) => s.name === 'up') as Step)).toBeDefined();
    expect(subshellReason(rb.find((s) => s.name === 'switch') as Step)).toBeUndefined();
  });

  it('builds scripts the shell parses', () => {
    const steps = (s: Step[]) => stepsScript(s, '@@m@@');
    const scripts = {
      preflight: steps(preflightSteps(run, host, owner())),
      deploy: steps(deploySteps(run, host, 'fleet', 'abc123abc123')),
      deployLinked: steps(deploySteps(run, host, 'fleet', null, { envLinked: true, currentLinked: true })),
      rollback: steps(rollbackSteps(run, host, 'fleet', run.release.id)),
      rollbackFirst: steps(rollbackSteps(run, host, 'fleet', null)),
      lock: lockScript(run, host, owner()),
      release: releaseLockScript(run, host),
      heartbeat: heartbeatScript(run, host, new Date().toISOString()),
      repair: repairScript(run, host),
      envSwap: steps([
        envSwapStep({
          dir: '/x',
          file: '.env',
          tmp: '.env.tmp-t',
          saved: '.env.before-r',
          ...envUndoNames('.env', 't'),
          size: 3,
          sha256: 'ab',
        }),
      ]),
      undo: undoEnvScript(run, host, '.env'),
      prune: pruneScript(run, host, [run.release.id]),
      point: rollbackPointScript(run, host, undefined),
      pointNew: rollbackPointScript(run, host, {
        release: run.release.id,
        previous: null,
        recordedAt: 'now',
        token: 't',
      }),
      current: readCurrentScript(host),
      handOver: handOverScript(run, host, 'fleet', null, 1).script,
      waitGone: waitGoneScript(run, host, 1),
      freeSpace: freeSpaceScript('/x', ['/x/y']),
    };
    for (const [name, text] of Object.entries(scripts)) {
      const r = spawnSync('/bin/sh', ['-n', '-c', text], { encoding: 'utf8' });
      expect([name, r.status, r.stderr]).toEqual([name, 0, '']);
    }
  });

  it('swaps the env file after checking it, keeps the release’s copy and this run’s undo, and undoes exactly that', () => {
    const shared = path.join(host.path, 'shared');
    fs.mkdirSync(shared, { recursive: true });
    fs.mkdirSync(path.join(host.path, '.homelab-deploy'), { recursive: true });
    const env = path.join(shared, '.env');
    fs.writeFileSync(env, 'X=old\n', { mode: 0o600 });
    const swap = (content: string, tmp: string, size = content.length) => {
      fs.writeFileSync(path.join(shared, tmp), content, { mode: 0o600 });
      const sha256 = createHash('sha256').update(content).digest('hex');
      const step = envSwapStep({
        dir: shared,
        file: '.env',
        tmp,
        saved: `.env.before-${run.release.id}`,
        ...envUndoNames('.env', run.runToken),
        size,
        sha256,
      });
      return sh(step.script);
    };
    // A temp file of the wrong size never replaces the env file, and goes.
    const bad = swap('X=new\n', '.env.tmp-a', 99);
    expect([bad.status, bad.stdout.trim()]).toEqual([1, 'size mismatch']);
    expect(fs.existsSync(path.join(shared, '.env.tmp-a'))).toBe(false);
    expect(swap('X=new\n', '.env.tmp-b').status).toBe(0);
    expect(swap('X=newer\n', '.env.tmp-c').status).toBe(0);
    expect(fs.readFileSync(env, 'utf8')).toBe('X=newer\n');
    // The release's copy holds what was there before the run, after two writes of it, and is the run's undo.
    const saved = path.join(shared, `.env.before-${run.release.id}`);
    expect(fs.readFileSync(saved, 'utf8')).toBe('X=old\n');
    expect(fs.readdirSync(shared).sort()).toEqual([
      '.env',
      `.env.before-${run.release.id}`,
      `.env.undo-saved-${run.runToken}`,
    ]);
    expect(sh(undoEnvScript(run, host, '.env')).stdout).toContain('restored');
    expect(fs.readFileSync(env, 'utf8')).toBe('X=old\n');
    expect(fs.statSync(env).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(shared).sort()).toEqual(['.env', `.env.before-${run.release.id}`]);
    expect(fs.readFileSync(saved, 'utf8')).toBe('X=old\n');
    // A later run of the same release keeps that copy and undoes by its own link.
    const later = makeContext(run.config, { runToken: 'unit00000002', env: {}, redactor: new Redactor() });
    fs.writeFileSync(path.join(shared, '.env.tmp-d'), 'X=later\n', { mode: 0o600 });
    const step = envSwapStep({
      dir: shared,
      file: '.env',
      tmp: '.env.tmp-d',
      saved: `.env.before-${run.release.id}`,
      ...envUndoNames('.env', later.runToken),
      size: 8,
      sha256: createHash('sha256').update('X=later\n').digest('hex'),
    });
    expect(sh(step.script).status).toBe(0);
    expect(fs.existsSync(path.join(shared, `.env.undo-${later.runToken}`))).toBe(true);
    expect(sh(undoEnvScript(later, host, '.env')).stdout).toContain('restored');
    expect(fs.readFileSync(env, 'utf8')).toBe('X=old\n');
    expect(fs.readFileSync(saved, 'utf8')).toBe('X=old\n');
    expect(fs.readdirSync(shared).sort()).toEqual(['.env', `.env.before-${run.release.id}`]);
    fs.rmSync(host.path, { recursive: true, force: true });
  });

  it('decides the SFTP swap’s changes as the shell swap does', () => {
    const n = { file: '.env', tmp: '.env.tmp-t', saved: '.env.before-r', ...envUndoNames('.env', 't') };
    const kinds = (found: Parameters<typeof envSwapChanges>[1]) =>
      envSwapChanges(n, found).map((c) =>
        c.kind === 'mark' ? `mark ${c.path}` : `${c.kind} ${c.from} ${c.to}`,
      );
    // First write of the release: its copy of the old file is this run's undo too.
    expect(kinds({ file: true, saved: false, undoRecorded: false })).toEqual([
      'keep .env .env.before-r',
      'mark .env.undo-saved-t',
      'rename .env.tmp-t .env',
    ]);
    // A later run of the same release keeps the release's copy and links its own undo.
    expect(kinds({ file: true, saved: true, undoRecorded: false })).toEqual([
      'keep .env .env.undo-t',
      'rename .env.tmp-t .env',
    ]);
    expect(kinds({ file: false, saved: false, undoRecorded: false })).toEqual([
      'mark .env.absent-t',
      'rename .env.tmp-t .env',
    ]);
    // A second write by the same run: the undo of its first write stays the way back.
    expect(kinds({ file: true, saved: true, undoRecorded: true })).toEqual(['rename .env.tmp-t .env']);
  });

  it('takes, refreshes and releases the lock with the record kept whole', () => {
    const p = host.path;
    fs.mkdirSync(path.join(p, 'releases', 'r1'), { recursive: true });
    fs.mkdirSync(path.join(p, 'shared'), { recursive: true });
    fs.mkdirSync(path.join(p, '.homelab-deploy'), { recursive: true });
    fs.symlinkSync('releases/r1', path.join(p, 'current'));
    const record = path.join(p, '.homelab-deploy', 'lock', 'owner.json');

    expect(sh(lockScript(run, host, owner())).stdout).toContain('lock=acquired');
    expect(sh(lockScript(run, host, owner())).stdout).toContain('lock=ours');
    const before = JSON.parse(fs.readFileSync(record, 'utf8')) as Record<string, unknown>;
    const beat = sh(heartbeatScript(run, host, '2030-01-02T03:04:05.678Z'));
    expect(beat.stdout.trim()).toBe('ours');
    const after = JSON.parse(fs.readFileSync(record, 'utf8')) as Record<string, unknown>;
    expect(after).toEqual({ ...before, heartbeatAt: '2030-01-02T03:04:05.678Z' });
    expect(fs.readdirSync(path.dirname(record))).toEqual(['owner.json']);

    // This run's undo file goes with its lock; another run's stays.
    fs.writeFileSync(path.join(p, 'shared', `.env.undo-${run.runToken}`), 'X=1\n');
    fs.writeFileSync(path.join(p, 'shared', '.env.undo-otherrun0001'), 'X=0\n');
    const rel = sh(releaseLockScript(run, host));
    expect(rel.stdout.split('\n')).toEqual(expect.arrayContaining(['released', 'current=r1']));
    expect(fs.existsSync(path.dirname(record))).toBe(false);
    expect(fs.readdirSync(path.join(p, 'shared'))).toEqual(['.env.undo-otherrun0001']);
    expect(sh(releaseLockScript(run, host)).stdout.trim()).toBe('not-ours');

    // Another run's lock: held, named, never refreshed or released by this one.
    const other = makeContext(run.config, { runToken: 'other0000001', env: {}, redactor: new Redactor() });
    expect(sh(lockScript(other, host, JSON.stringify(lockOwner(other, 'h1', 'x')))).stdout).toContain(
      'lock=acquired',
    );
    const held = sh(lockScript(run, host, owner()));
    expect(held.status).toBe(3);
    expect(held.stdout).toContain('"token":"other0000001"');
    const theirs = fs.readFileSync(record, 'utf8');
    expect(sh(heartbeatScript(run, host, 'x')).stdout.trim()).toBe('lost');
    expect(sh(releaseLockScript(run, host)).stdout.trim()).toBe('not-ours');
    expect(fs.readFileSync(record, 'utf8')).toBe(theirs);
    expect(sh(readCurrentScript(host)).stdout).toBe('r1\n');
    execFileSync('rm', ['-rf', p]);
  });
});
