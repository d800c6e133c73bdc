import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { all, cell, fail, statusProblems, type Cell } from './harness';

/**
 * The host is not who the known_hosts file says (a rotated key; a pinned key of another type), or it refuses
 * the deploy key. Never retried, never `unreachable`, and nothing changed anywhere.
 */

cell('host key rotated', 'preflight', async (c: Cell) => {
  c.commit('v2');
  await c.faults.vps.rotateHostKey();
  const r = await c.deploy('v2');
  const problems = await statusProblems(c, r, {
    exit: 1,
    status: 'aborted',
    errorClass: 'host-key',
    host: 'vps',
  });
  const attempts = r.report?.phases
    .find((p) => p.name === 'preflight')
    ?.hosts.find((h) => h.host === 'vps')?.attempts;
  if ((attempts?.length ?? 0) > 1)
    problems.push(`vps pre-flight was tried ${attempts?.length} times; a host-key failure is never retried`);
  fail([...problems, ...(await c.hostProblems(all('v1')))]);
});

cell('host key rotated', 'public (reconnect)', async (c: Cell) => {
  const v2 = c.commit('v2');
  c.faults.vps.hold('up', v2);
  const run = c.start('v2');
  const pid = await c.faults.vps.held('up');
  // The host is reinstalled under the run: the open connection dies, and the next one meets a new key.
  await c.faults.vps.rotateHostKey();
  await c.faults.vps.killSessionOf(pid);
  const r = await c.finish(run, 'v2');
  const problems = await statusProblems(c, r, { exit: 3, status: 'failed' });
  const vps = r.report?.hosts.find((h) => h.host === 'vps');
  if (vps?.state !== 'unknown') problems.push(`report: vps is "${vps?.state}", expected "unknown"`);
  const vpsErrors = (r.report?.phases ?? []).flatMap((p) =>
    p.hosts
      .filter((h) => h.host === 'vps')
      .flatMap((h) => [h.error, ...h.attempts.map((a) => a.error), h.rollback?.error]),
  );
  if (!vpsErrors.some((e) => e?.class === 'host-key'))
    problems.push(
      `no vps error of class host-key: ${JSON.stringify(vpsErrors.filter(Boolean).map((e) => e?.class))}`,
    );
  problems.push(...(await c.hostProblems(all('v2', { vps: { release: 'v2', unchecked: true } }))));
  fail(problems);
});

cell('host key type mismatch', 'preflight', async (c: Cell) => {
  c.commit('v2');
  // known_hosts pins only an ecdsa key for the vps; its sshd offers only ed25519.
  const ecdsa = path.join(c.dir, 'vps_ecdsa');
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-C', '', '-f', ecdsa]);
  const pinned = fs
    .readFileSync(ecdsa + '.pub', 'utf8')
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
  const fp = execFileSync('ssh-keygen', ['-lf', ecdsa + '.pub'], { encoding: 'utf8' }).split(' ')[1];
  const kh = path.join(c.dir, 'known_hosts');
  fs.writeFileSync(
    kh,
    c.sb.hosts.map((h) => `${h.address} ${h.name === 'vps' ? pinned : h.hostKeyPub}`).join('\n') + '\n',
  );
  c.writeConfig((t) => t.replace(c.sb.knownHostsPath, kh));
  const r = await c.deploy('v2');
  const problems = await statusProblems(c, r, {
    exit: 1,
    status: 'aborted',
    errorClass: 'host-key',
    host: 'vps',
  });
  const msg = r.report?.error?.message ?? '';
  if (!/ecdsa/i.test(msg) || !/ed25519/i.test(msg) || !msg.includes(fp))
    problems.push(
      `the message must name the expected type and fingerprint (ecdsa, ${fp}) and what the server offered (ed25519): "${msg}"`,
    );
  fail([...problems, ...(await c.hostProblems(all('v1')))]);
});

cell('auth refused', 'preflight', async (c: Cell) => {
  c.commit('v2');
  c.faults.vps.refuseAuth();
  const r = await c.deploy('v2');
  fail([
    ...(await statusProblems(c, r, { exit: 1, status: 'aborted', errorClass: 'auth', host: 'vps' })),
    ...(await c.hostProblems(all('v1'))),
  ]);
});
