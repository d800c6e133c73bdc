import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { DeployError } from '../errors';
import type { UploadFile } from '../remote/sftp';
import { repoRoot } from './ref';

/**
 * The files of `dir` exactly as committed at `commit`, read from git's object store rather than the working tree,
 * so what is deployed is what the SHA names even on a dirty checkout.
 */
export function filesAtCommit(dir: string, commit: string): UploadFile[] {
  const root = repoRoot(dir);
  const rel = path.relative(root, dir).split(path.sep).join('/');
  if (rel.startsWith('..'))
    throw new DeployError('config', `source ${dir} is outside the repository ${root}`);
  const listing = execFileSync('git', ['ls-tree', '-r', '-z', '--full-tree', commit, '--', rel || '.'], {
    cwd: root,
    maxBuffer: 256 * 1024 * 1024,
  }).toString('utf8');
  const entries = listing
    .split('\0')
    .filter(Boolean)
    .map((line) => {
      const [meta, file] = line.split('\t');
      const [mode, type, sha] = meta.split(' ');
      return { mode, type, sha, file };
    })
    .filter((e) => e.type === 'blob' && e.mode !== '120000'); // symlinks and submodules are not deployed
  if (entries.length === 0) {
    throw new DeployError('config', `source "${rel || '.'}" has no files at commit ${commit.slice(0, 12)}`);
  }
  const batch = spawnSync('git', ['cat-file', '--batch'], {
    cwd: root,
    input: entries.map((e) => e.sha).join('\n') + '\n',
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (batch.status !== 0) throw new DeployError('config', `git cat-file failed: ${batch.stderr.toString()}`);
  const out = batch.stdout;
  let pos = 0;
  return entries.map((e) => {
    const nl = out.indexOf(0x0a, pos);
    const header = out.subarray(pos, nl).toString('utf8').split(' ');
    const size = Number(header[2]);
    const data = out.subarray(nl + 1, nl + 1 + size);
    pos = nl + 1 + size + 1;
    return {
      path: rel ? e.file.slice(rel.length + 1) : e.file,
      data: Buffer.from(data),
      mode: e.mode === '100755' ? 0o755 : 0o644,
    };
  });
}
