import { randomBytes } from 'node:crypto';
import { all, cell, fail, statusProblems, type Cell } from './harness';

/**
 * The vps's deploy path lives on a small filesystem of its own (3 MiB): below the free-space threshold at
 * pre-flight, full while the env file is written, too small for the release being uploaded.
 */

const smallVpsDisk = (c: Cell) => c.faults.vps.smallDisk(c.path('vps'), '3m');

cell(
  'disk full',
  'preflight',
  async (c: Cell) => {
    c.commit('v2');
    c.writeConfig((t) => t.replace('min_free_disk: 1MB', 'min_free_disk: 2MB'));
    // About 1.4 MB stay free: under the 2 MB threshold, far from zero.
    const r0 = await c.sb.exec(
      'vps',
      `dd if=/dev/zero of=${c.path('vps')}/.ballast bs=1024 count=1500 2>&1; df -k ${c.path('vps')}`,
    );
    const freeKb = Number(r0.stdout.trim().split('\n').pop()?.split(/\s+/)[3]);
    const r = await c.deploy('v2');
    const problems = await statusProblems(c, r, {
      exit: 1,
      status: 'aborted',
      errorClass: 'precondition',
      host: 'vps',
    });
    const msg = r.report?.error?.message ?? '';
    // The real figures: ~1.4 MB free (however it is written), never "0 GB".
    const mb = (freeKb * 1024) / 1e6;
    const stated = [
      mb.toFixed(1),
      (mb / 1.048576).toFixed(1),
      String(Math.round(freeKb)),
      String(Math.round(freeKb * 1.024)),
    ];
    if (/\b0 GB\b/.test(msg) || !stated.some((s) => msg.includes(s)))
      problems.push(
        `the message must state the real free space (${freeKb} KiB = ${mb.toFixed(1)} MB): "${msg}"`,
      );
    fail([...problems, ...(await c.hostProblems(all('v1')))]);
  },
  { before: smallVpsDisk },
);

cell(
  'disk full',
  'secrets',
  async (c: Cell) => {
    c.commit('v2');
    c.faults.vps.holdCommand('sftp-server');
    const run = c.start('v2');
    await c.faults.vps.held('cmd');
    await c.faults.vps.fillDisk(c.path('vps'));
    c.faults.vps.go();
    const r = await c.finish(run, 'v2');
    const problems = await statusProblems(c, r, { exit: 1, status: 'aborted', host: 'vps' });
    if (!/no space|disk full|ENOSPC/i.test(r.report?.error?.message ?? ''))
      problems.push(`the message must say the disk is full: "${r.report?.error?.message}"`);
    fail([...problems, ...(await c.hostProblems(all('v1')))]);
  },
  { before: smallVpsDisk },
);

cell(
  'disk full',
  'upload',
  async (c: Cell) => {
    // v2 brings a 4 MiB file: it fits on staging and production, not on the vps.
    c.commit('v2', { 'blob.bin': randomBytes(4 * 1024 * 1024) });
    const r = await c.deploy('v2');
    const problems = await statusProblems(c, r, { exit: 0, status: 'partial_success', host: 'vps' });
    if (!/no space|disk full|ENOSPC/i.test(r.report?.error?.message ?? ''))
      problems.push(`the message must say the disk is full: "${r.report?.error?.message}"`);
    fail([...problems, ...(await c.hostProblems(all('v2', { vps: { release: 'v1' } })))]);
  },
  { before: smallVpsDisk },
);
