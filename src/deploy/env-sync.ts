import type { HostConfig } from '../config/types';
import type { RunContext } from '../run/context';
import { shQuote } from '../remote/quote';
import { readFileIfExists, writeFile } from '../remote/sftp';
import { runSteps, type StepsResult } from '../remote/steps';
import { changedKeys, parseEnvFile } from '../secrets/env-file';
import { sha256 } from './host-ops';
import { LAYOUT } from './layout';

export interface EnvSyncResult {
  state: 'unchanged' | 'written';
  changed: string[]; // key names only
  result?: StepsResult;
}

/**
 * Replaces a host's env file atomically: 0600 temp file in the same folder, fsync, size+sha256 check on the host,
 * keep the old file for rollback, rename over. An interrupted run leaves only a temp file the next run's pre-flight sweeps.
 */
export async function syncEnvFile(
  ctx: RunContext,
  host: HostConfig,
  file: string,
  content: string,
): Promise<EnvSyncResult> {
  const conn = await ctx.pool.get(host.name);
  const sftp = await conn.sftp({ signal: ctx.signal });
  const dir = `${host.path}/${LAYOUT.shared}`;
  const target = `${dir}/${file}`;
  const tmp = `${file}.tmp-${ctx.runToken}`;
  const old = (await readFileIfExists(sftp, host.name, target, { signal: ctx.signal }))?.toString('utf8');
  if (old !== undefined && sha256(old) === sha256(content)) return { state: 'unchanged', changed: [] };

  const data = Buffer.from(content, 'utf8');
  await writeFile(sftp, host.name, `${dir}/${tmp}`, data, 0o600, {
    exclusive: true,
    fsync: true,
    signal: ctx.signal,
  });
  const saved = `${file}.before-${ctx.release.id}`;
  const r = await runSteps(
    conn,
    [
      {
        name: 'env-swap',
        display: `verify and rename ${file}`,
        script: [
          `cd ${shQuote(dir)} || exit 1`,
          `[ "$(wc -c < ${shQuote(tmp)} | tr -d ' ')" = ${data.length} ] || { echo "size mismatch"; rm -f ${shQuote(tmp)}; exit 1; }`,
          `[ "$(sha256sum ${shQuote(tmp)} | cut -d' ' -f1)" = ${sha256(data)} ] || { echo "checksum mismatch"; rm -f ${shQuote(tmp)}; exit 1; }`,
          // The copy kept for rollback is made like the file itself (temp, then rename), and only once per
          // release: a re-run must not replace the pre-deploy copy with this run's values.
          `if [ -f ${shQuote(file)} ] && [ ! -f ${shQuote(saved)} ]; then cp -p ${shQuote(file)} ${shQuote(`${saved}.tmp`)} && mv -f ${shQuote(`${saved}.tmp`)} ${shQuote(saved)} || { echo "could not keep the previous ${file}"; rm -f ${shQuote(tmp)}; exit 1; }; fi`,
          `mv -f ${shQuote(tmp)} ${shQuote(file)} || exit 1`,
          // The rename is durable only once the directory entry is on disk.
          `sync ${shQuote(file)} . 2>/dev/null || sync`,
        ].join('\n'),
      },
    ],
    { timeoutMs: 60_000, signal: ctx.signal },
  );
  return {
    state: 'written',
    changed: changedKeys(
      old ? parseEnvFile(old, host.envDialect) : {},
      parseEnvFile(content, host.envDialect),
    ),
    result: r,
  };
}
