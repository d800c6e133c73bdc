import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import type { TargetReleases } from '../../src/cli/commands/releases';
import { releaseIdFor } from '../../src/run/release';
import type { Report } from '../../src/report/types';
import { HOSTS, useHomelab, type Project } from '../fixtures/pipeline';

/**
 * `rollback`, `releases`, `report` and exit code 3 through the CLI, against real sshd hosts. Every claim about a
 * host is read from its filesystem (its `current` link, its lock directory) or its running service.
 */

const SECRET = 'cli-rb-s3cret';
const env = { ...process.env, HD_TEST_SECRET: SECRET, USER: 'erin', GITHUB_ACTIONS: undefined };
const lab = useHomelab();
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-cli-rollback-'));

async function cli(argv: string[], opts: { tty?: boolean } = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    out: { write: (t: string) => (stdout += t), isTTY: opts.tty },
    err: { write: (t: string) => (stderr += t) },
    env,
    signals: new EventEmitter(),
    exit: (c) => {
      throw new Error(`exit(${c}) called`);
    },
  });
  expect(stdout + stderr).not.toContain(SECRET);
  return { code, out: stdout, err: stderr };
}

const lockHeld = (p: Project, h: string) => fs.existsSync(path.join(p.paths[h], '.homelab-deploy', 'lock'));
const auditOf = (p: Project, h: string) =>
  fs
    .readFileSync(path.join(p.paths[h], '.homelab-deploy', 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** v1, then v2 on every host, both through `homelab-deploy run`. */
async function v1ThenV2(): Promise<{ p: Project; v1: string; v2: string }> {
  const p = await lab.project();
  const first = await cli(['run', '--config', p.configPath, '--ref', 'HEAD']);
  expect({ code: first.code, err: first.err, out: first.code ? first.out : '' }).toEqual({
    code: 0,
    err: '',
    out: '',
  });
  const v1 = p.current('thinkpad') as string;
  const v2 = releaseIdFor(p.commit('v2'));
  const second = await cli(['run', '--config', p.configPath, '--ref', 'HEAD']);
  expect(second.code).toBe(0);
  for (const h of HOSTS) expect(p.current(h)).toBe(v2);
  return { p, v1, v2 };
}

describe('rollback and releases against real hosts', () => {
  it('releases lists v1 and v2; rollback --to previous puts every host back on v1, locked, audited, checked', async () => {
    const { p, v1, v2 } = await v1ThenV2();

    const listed = await cli(['releases', '--config', p.configPath, '--json']);
    expect(listed.code).toBe(0);
    const list = JSON.parse(listed.out) as TargetReleases[];
    expect(list.map((r) => r.host)).toEqual([...HOSTS]);
    for (const r of list)
      expect(r).toMatchObject({
        kind: 'ssh',
        reachable: true,
        current: v2,
        previous: v1,
        releases: [v2, v1],
      });
    const text = await cli(['releases', '--config', p.configPath, '--targets', 'rtx1080']);
    expect(text.out).toBe(
      `rtx1080 (ssh): current ${v2}\n    rollback --to previous: ${v1}\n    on record: ${v2} (current), ${v1}\n`,
    );

    const reportFile = path.join(out, 'rollback.json');
    const rb = await cli([
      'rollback',
      '--config',
      p.configPath,
      '--to',
      'previous',
      '--report-file',
      reportFile,
    ]);
    expect({ code: rb.code, err: rb.err }).toEqual({ code: 0, err: '' });
    // Read back from the hosts: current points at v1 and the v1 service answers.
    for (const h of HOSTS) {
      expect({ h, current: p.current(h) }).toEqual({ h, current: v1 });
      expect(await p.health(h)).toEqual({ status: 200, release: v1 });
      expect(lockHeld(p, h)).toBe(false);
      expect(auditOf(p, h).filter((a) => a.action === 'rollback')).toEqual([
        expect.objectContaining({ release: v2, to: v1, actor: 'erin' }),
      ]);
    }
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
    expect(report).toMatchObject({ status: 'success', phase: 'rollback', systemsDeployed: [...HOSTS] });
    expect(report.hosts.map((h) => `${h.host}:${h.before}→${h.after}`)).toEqual(
      HOSTS.map((h) => `${h}:${v2}→${v1}`),
    );
    expect(rb.out).toContain('✔ SUCCESS');
    expect(rb.out).toMatch(/▶ rollback \[thinkpad, rtx1080, vps\]/);

    // Now v1 is current and a rollback to v2 (a version on record) goes forward again, on one host.
    const forward = await cli([
      'rollback',
      '--config',
      p.configPath,
      '--to',
      v2,
      '--targets',
      'vps',
      '--json',
    ]);
    expect(forward.code).toBe(0);
    expect((JSON.parse(forward.out) as Report).hosts.map((h) => h.host)).toEqual(['vps']);
    expect(p.current('vps')).toBe(v2);
    expect(p.current('rtx1080')).toBe(v1);

    // A version a host does not have is refused per host, and nothing changes there.
    const missing = await cli([
      'rollback',
      '--config',
      p.configPath,
      '--to',
      'abcdefabcdef',
      '--targets',
      'thinkpad',
    ]);
    expect(missing.code).toBe(3);
    expect(missing.out).toContain('has no release "abcdefabcdef" to return to');
    expect(p.current('thinkpad')).toBe(v1);
    expect(lockHeld(p, 'thinkpad')).toBe(false);

    // report --html renders the rollback's report as one page a browser can open.
    const html = path.join(out, 'rollback.html');
    const page = await cli(['report', reportFile, '--html', html]);
    expect(page.code).toBe(0);
    expect(page.err).toMatch(new RegExp(`^wrote the HTML report to ${html} \\(\\d+ bytes\\)\\n$`));
    const doc = fs.readFileSync(html, 'utf8');
    expect(doc.startsWith('<!doctype html>') || doc.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(doc.trimEnd().endsWith('</html>')).toBe(true);
    for (const h of HOSTS) expect(doc).toContain(h);
    expect(doc).toContain(v1);
    expect(doc).not.toMatch(/<script[^>]+src=/); // self-contained
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // history --html: the trends page of the deploys the hosts' release logs record.
    const trends = path.join(out, 'history.html');
    const hist = await cli(['history', '--config', p.configPath, '--html', trends]);
    expect(hist.code).toBe(0);
    expect(hist.err).toMatch(/^wrote the history page to .*history\.html \(\d+ bytes\)\n$/);
    expect(hist.out).toBe('');
    const trendsDoc = fs.readFileSync(trends, 'utf8');
    expect(trendsDoc).toMatch(/^<!doctype html>/i);
    expect(trendsDoc).toContain('deploy history · sample');
    expect(trendsDoc).toMatch(/deploys: <b>\d+<\/b>/);
    // And as text.
    const asText = await cli(['report', reportFile]);
    expect(asText.code).toBe(0);
    expect(asText.out).toMatch(new RegExp(`^  thinkpad\\s+staging\\s+${v2}\\s+${v1}\\s+previous`, 'm'));
    expect(asText.out).toContain('SUCCESS');
  });

  it('a rollback whose target release was deleted mid-run: exit 3, NEEDS A HUMAN, status exits 3 too', async () => {
    const { p, v2 } = await v1ThenV2();
    const v3 = releaseIdFor(p.commit('v3'));
    p.fault('rtx1080', v3);
    // Production turns unhealthy on v3; once v3 is on the host, take away the v2 it would roll back to.
    let deleted = false;
    const watch = setInterval(() => {
      if (!deleted && fs.existsSync(path.join(p.paths.rtx1080, 'releases', v3))) {
        deleted = true;
        fs.rmSync(path.join(p.paths.rtx1080, 'releases', v2), { recursive: true, force: true });
      }
    }, 20);
    const reportFile = path.join(out, 'failed-rollback.json');
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(['run', '--config', p.configPath, '--ref', 'HEAD', '--report-file', reportFile]);
    } finally {
      clearInterval(watch);
    }
    expect(deleted).toBe(true);
    expect(r.code).toBe(3);
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Report;
    expect(report.needsAttention).toEqual(['rtx1080']);
    expect(report.rollbackFailed).toBe(true);
    expect(r.out).toContain('⚠ NEEDS A HUMAN: 1 target: rtx1080');
    expect(r.out).toMatch(
      new RegExp(`rtx1080: rollback to ${v2} FAILED: .*rollback target ${v2} is missing`),
    );
    // Read back: rtx1080 still runs v3, staging went back.
    expect(p.current('rtx1080')).toBe(v3);
    expect(p.current('thinkpad')).toBe(v2);

    const status = await cli(['status', '--config', p.configPath, '--targets', 'rtx1080']);
    expect(status.code).toBe(3);
    expect(status.out).toMatch(
      /^rtx1080: current \S+, previous \S+\n {4}⚠ NEEDS A HUMAN: rollback-failed at /,
    );
    expect(status.err).toContain('⚠ NEEDS A HUMAN: rtx1080 (a rollback failed or was left unfinished)');
    const json = await cli(['status', '--config', p.configPath, '--json']);
    expect(json.code).toBe(3);
    expect(
      JSON.parse(json.out).find((s: { host: string }) => s.host === 'rtx1080').needsAttention,
    ).toMatchObject({
      reason: 'rollback-failed',
    });

    // The manual rollback to a release that is gone fails too, and says so with exit 3.
    const manual = await cli([
      'rollback',
      '--config',
      p.configPath,
      '--to',
      'previous',
      '--targets',
      'rtx1080',
    ]);
    expect(manual.code).toBe(3);
    expect(p.current('rtx1080')).toBe(v3);
    expect(manual.out).toContain('⚠ NEEDS A HUMAN: 1 target: rtx1080');
    expect(lockHeld(p, 'rtx1080')).toBe(false);
  });

  it('a fleet stage on a terminal: one live line per wave, redrawn in place, no line per healthy target', async () => {
    const p = await lab.project({
      config: (c) =>
        c.slice(0, c.indexOf('stages:\n')) +
        'stages:\n  - name: fleet\n    hosts: [thinkpad, rtx1080, vps]\n    rollout: { waves: [1, "100%"] }\n',
    });
    const tty = await cli(['run', '--config', p.configPath, '--ref', 'HEAD'], { tty: true });
    expect(tty.code).toBe(0);
    expect(tty.out).toContain('  ▶ fleet wave 1/2: 1 target (canary)\n');
    expect(tty.out).toContain('  ▶ fleet wave 2/2: 2 targets\n');
    expect(tty.out).toMatch(/ {2}✔ fleet wave 2: 2 ok, 0 failed \(/);
    // The wave's progress line is redrawn in place (carriage return, clear line), not printed per target.
    expect(tty.out).toContain('\r\x1b[2K');
    expect(tty.out).toMatch(/ {4}fleet wave 2: \d\/2 done, 0 failed, \d running/);
    expect(tty.out).not.toMatch(/✔ (thinkpad|rtx1080|vps) ok/);
    for (const h of HOSTS) expect(p.current(h)).not.toBeNull();
    // Not a terminal (a log file, CI): the same run prints whole lines only.
    p.commit('v2');
    const log = await cli(['run', '--config', p.configPath, '--ref', 'HEAD']);
    expect(log.code).toBe(0);
    expect(log.out).not.toContain('\r');
    expect(log.out).toMatch(/^ {4}fleet wave 2: 2\/2 done, 0 failed, 0 running/m);
  });
});
