import type { Config } from '../config/types';
import { ConnectionPool } from '../remote/pool';
import { mapLimit } from '../remote/semaphore';
import { shQuote } from '../remote/quote';
import type { Redactor } from '../secrets/redact';
import { parseOwner, type LockOwner } from './host-ops';
import { LAYOUT } from './layout';

export interface HostStatus {
  host: string;
  reachable: boolean;
  error?: string;
  current?: string | null;
  previous?: string | null;
  lock?: (LockOwner & { ageSeconds: number }) | 'none' | 'unknown-owner';
  recent?: Record<string, unknown>[];
}

/** Reads each host's state for operators (`status`, `lock status`): one round trip per host, no changes. */
export async function hostStatuses(
  config: Config,
  hosts: string[],
  opts: { env: NodeJS.ProcessEnv; redactor: Redactor },
): Promise<HostStatus[]> {
  const pool = new ConnectionPool(config, { ...opts, runToken: 'inspect' });
  const mark = '@@hd-inspect@@';
  const out = await mapLimit(hosts, config.parallel, async (name): Promise<HostStatus> => {
    const h = config.hosts[name];
    try {
      const conn = await pool.get(name);
      const res = await conn.exec(
        [
          `cd ${shQuote(h.path)} 2>/dev/null || { echo "${mark}missing"; exit 0; }`,
          `t=$(readlink ${LAYOUT.current} 2>/dev/null); echo "${mark}current=\${t##*/}"`,
          `if [ -d ${LAYOUT.lock} ]; then echo "${mark}lock-age=$(( $(date +%s) - $(stat -c %Y ${LAYOUT.lockOwner} 2>/dev/null || stat -c %Y ${LAYOUT.lock}) ))"; echo "${mark}owner=$(cat ${LAYOUT.lockOwner} 2>/dev/null | tr -d '\\n')"; fi`,
          `tail -n 20 ${LAYOUT.releaseLog} 2>/dev/null | sed 's/^/${mark}log=/'`,
        ].join('\n'),
        { timeoutMs: 20_000 },
      );
      const lines = res.stdout
        .split('\n')
        .filter((l) => l.startsWith(mark))
        .map((l) => l.slice(mark.length));
      const get = (k: string) => lines.find((l) => l.startsWith(k + '='))?.slice(k.length + 1);
      const logs = lines
        .filter((l) => l.startsWith('log='))
        .map((l) => {
          try {
            return JSON.parse(l.slice(4)) as Record<string, unknown>;
          } catch {
            return undefined;
          }
        })
        .filter((x): x is Record<string, unknown> => !!x);
      const current = get('current') || null;
      const deployed = logs.filter((l) => l.result === 'deployed' && l.release !== current);
      const ageText = get('lock-age');
      const owner = ageText === undefined ? undefined : parseOwner(get('owner') ?? '');
      return {
        host: name,
        reachable: true,
        current,
        previous: (deployed.pop()?.release as string | undefined) ?? null,
        lock:
          ageText === undefined
            ? 'none'
            : owner
              ? { ...owner, ageSeconds: Number(ageText) }
              : 'unknown-owner',
        recent: logs.slice(-5),
      };
    } catch (err) {
      return { host: name, reachable: false, error: opts.redactor.redact((err as Error).message) };
    }
  });
  await pool.closeAll();
  return out;
}

/** Operator override: removes a host's lock whoever holds it, and records who did it in the audit log. */
export async function forceReleaseLocks(
  config: Config,
  hosts: string[],
  opts: { env: NodeJS.ProcessEnv; redactor: Redactor; actor: string },
): Promise<{ host: string; released: boolean; error?: string }[]> {
  const pool = new ConnectionPool(config, { ...opts, runToken: 'operator' });
  const res = await mapLimit(hosts, config.parallel, async (name) => {
    const h = config.hosts[name];
    try {
      const conn = await pool.get(name);
      const rec = JSON.stringify({
        time: new Date().toISOString(),
        action: 'lock-force-released',
        host: name,
        actor: opts.actor,
      });
      const r = await conn.exec(
        [
          `cd ${shQuote(h.path)} 2>/dev/null || exit 0`,
          `[ -d ${LAYOUT.lock} ] || { echo none; exit 0; }`,
          `prev=$(cat ${LAYOUT.lockOwner} 2>/dev/null | tr -d '\\n')`,
          `rm -rf ${LAYOUT.lock} && printf '%s%s%s\\n' ${shQuote(rec.slice(0, -1) + ',"previous_owner":')} "\${prev:-null}" '}' >> ${LAYOUT.auditLog} && echo released`,
        ].join('\n'),
        { timeoutMs: 20_000 },
      );
      return { host: name, released: r.stdout.includes('released') };
    } catch (err) {
      return { host: name, released: false, error: opts.redactor.redact((err as Error).message) };
    }
  });
  await pool.closeAll();
  return res;
}

/** Every host's release log, for `history`; unreachable hosts are reported, not fatal. */
export async function readReleaseLogs(
  config: Config,
  hosts: string[],
  opts: { env: NodeJS.ProcessEnv; redactor: Redactor },
): Promise<{ host: string; text?: string; error?: string }[]> {
  const pool = new ConnectionPool(config, { ...opts, runToken: 'history' });
  const res = await mapLimit(hosts, config.parallel, async (name) => {
    try {
      const conn = await pool.get(name);
      const r = await conn.exec(
        `cat ${shQuote(`${config.hosts[name].path}/${LAYOUT.releaseLog}`)} 2>/dev/null; true`,
        { timeoutMs: 60_000 },
      );
      return { host: name, text: r.stdout };
    } catch (err) {
      return { host: name, error: opts.redactor.redact((err as Error).message) };
    }
  });
  await pool.closeAll();
  return res;
}
