import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../lib/exec';

/** The machine and software a results file was measured with, as lines for its header. */
export async function environmentLines(root: string, cli: string, sshd: string): Promise<string[]> {
  const cpu = os.cpus();
  const sshdVersion = (await run(sshd, ['-V']).catch(() => ({ stderr: '?' }))).stderr.trim().split(',')[0];
  const sshdPackage = (
    await run('dpkg-query', ['-W', '-f', '${Version}', 'openssh-server']).catch(() => ({ stdout: '' }))
  ).stdout.trim();
  const head = (
    await run('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).catch(() => ({ stdout: '?' }))
  ).stdout.trim();
  const dirty = (
    await run('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no']).catch(() => ({
      stdout: '',
    }))
  ).stdout.trim();
  let bundle = '?';
  try {
    const bytes = fs.readFileSync(cli);
    bundle = `${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}, ${(bytes.length / 1e6).toFixed(1)} MB, built ${fs.statSync(cli).mtime.toISOString().slice(0, 16).replace('T', ' ')}`;
  } catch {
    // reported as '?'
  }
  let ssh2 = '?';
  try {
    ssh2 = (JSON.parse(fs.readFileSync(require.resolve('ssh2/package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    // reported as '?'
  }
  return [
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}; shared with other work, so the load column matters`,
    `software: node ${process.version}, ${sshdVersion}${sshdPackage ? ` (openssh-server ${sshdPackage})` : ''}, ssh2 ${ssh2}`,
    `homelab-deploy: ${cli.startsWith(`${root}/`) ? path.relative(root, cli) : cli} (sha256 ${bundle}); checkout ${head}${dirty ? ' with uncommitted changes' : ''}`,
  ];
}

/** bench/results/<date>-N<N>.md, or <date>-<HHMM>-N<N>.md (then -<HHMMSS>) when that name is taken. */
export function resultsFile(dir: string, n: number, when: Date): string {
  const pad = (v: number) => String(v).padStart(2, '0');
  const date = `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
  const hm = `${pad(when.getHours())}${pad(when.getMinutes())}`;
  for (const name of [
    `${date}-N${n}.md`,
    `${date}-${hm}-N${n}.md`,
    `${date}-${hm}${pad(when.getSeconds())}-N${n}.md`,
  ]) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) return file;
  }
  return path.join(dir, `${date}-${hm}${pad(when.getSeconds())}-${process.pid}-N${n}.md`);
}
