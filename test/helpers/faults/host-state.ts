import * as path from 'node:path';
import type { NetnsSandbox } from '../netns-hosts';

/** What one host really is after a run, read inside its own namespaces (never over SSH, never from a report). */
export interface HostState {
  host: string;
  /** Release id `current` points at; null when there is no `current`. */
  current: string | null;
  /** Mode of the env file (e.g. "600"), undefined when there is none. */
  envMode?: string;
  /** Labels of the secret values the env file holds. */
  envHolds: string[];
  /** The lock's owner record as found (raw text), undefined when the host is not locked. */
  lock?: string;
  /** Half-uploaded releases and env temp files left in the deploy path. */
  debris: string[];
  /** Release each running copy of the service serves (by its working directory). */
  servers: string[];
  /** Every other process of the host that is neither its init, its lifeline, its sshd listener nor this probe. */
  others: string[];
}

const MARK = '@@hd-state@@';

/** A command line short enough for a failure message: its start and its end (where a run token stands). */
const shorten = (args: string) => {
  const flat = args.replace(/\s+/g, ' ');
  return flat.length <= 110 ? flat : `${flat.slice(0, 70)} … ${flat.slice(-35)}`;
};

/** The probe script; `secrets` maps labels to values, and only the labels come back. */
function probe(deployPath: string, pidFile: string, secrets: Record<string, string>): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    `echo "${MARK}self=$$"`,
    `echo "${MARK}sshd=$(cat ${q(pidFile)} 2>/dev/null)"`,
    `if cd ${q(deployPath)} 2>/dev/null; then`,
    `  t=$(readlink current 2>/dev/null) && echo "${MARK}current=\${t##*/}"`,
    `  [ -f shared/.env ] && echo "${MARK}envmode=$(stat -c %a shared/.env)"`,
    ...Object.entries(secrets).map(
      ([label, value]) => `  grep -qF -- ${q(value)} shared/.env 2>/dev/null && echo "${MARK}env=${label}"`,
    ),
    `  [ -d .homelab-deploy/lock ] && echo "${MARK}lock=$(cat .homelab-deploy/lock/owner.json 2>/dev/null | tr -d '\\n')."`,
    `  for f in releases/.incoming-* shared/.env.tmp-* shared/*.restore; do [ -e "$f" ] && echo "${MARK}debris=$f"; done`,
    'fi',
    `ps -A -o pid=,ppid=,stat=,args= | sed 's/^/${MARK}ps=/'`,
    `for p in $(ps -A -o pid=,args= | awk '$2 == "node" && $3 == "server.cjs" {print $1}'); do echo "${MARK}server=$p $(readlink /proc/$p/cwd)"; done`,
  ].join('\n');
}

export async function readHostState(
  sb: NetnsSandbox,
  name: string,
  deployPath: string,
  secrets: Record<string, string>,
): Promise<HostState> {
  const h = sb.host(name);
  const r = await sb.exec(name, probe(deployPath, path.join(h.dir, 'sshd.pid'), secrets));
  if (r.code !== 0) throw new Error(`reading the state of ${name} failed (exit ${r.code}): ${r.stderr}`);
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith(MARK))
    .map((l) => l.slice(MARK.length));
  const all = (k: string) => lines.filter((l) => l.startsWith(k + '=')).map((l) => l.slice(k.length + 1));
  const one = (k: string) => all(k)[0];
  const self = Number(one('self'));
  const sshd = Number(one('sshd') || 0);
  const procs = all('ps').map((l) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(l);
    return m ? { pid: Number(m[1]), ppid: Number(m[2]), stat: m[3], args: m[4] } : undefined;
  });
  const list = procs.filter((p): p is NonNullable<typeof p> => !!p);
  const init = list.find((p) => p.pid === 1);
  // The probe and everything below it (ps, awk, the subshells of $(...)).
  const mine = new Set<number>([self]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of list)
      if (!mine.has(p.pid) && mine.has(p.ppid)) {
        mine.add(p.pid);
        grew = true;
      }
  }
  const serverPids = new Set(all('server').map((s) => Number(s.split(' ')[0])));
  const infra = (p: (typeof list)[number]) =>
    p.pid === 1 ||
    p.pid === sshd ||
    mine.has(p.pid) ||
    p.stat.startsWith('Z') ||
    serverPids.has(p.pid) ||
    // The lifeline: a fork of init waiting on `cat`.
    (p.ppid === 1 && init !== undefined && p.args === init.args) ||
    (p.args === 'cat' && list.some((x) => x.pid === p.ppid && x.ppid === 1));
  return {
    host: name,
    current: one('current') ?? null,
    envMode: one('envmode'),
    envHolds: all('env'),
    lock: one('lock')?.replace(/\.$/, ''),
    debris: all('debris'),
    servers: all('server').map((s) => path.basename(s.split(' ')[1] ?? '')),
    others: list.filter((p) => !infra(p)).map((p) => `${p.pid} ${shorten(p.args)}`),
  };
}
