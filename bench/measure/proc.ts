import * as fs from 'node:fs';

/**
 * Readers of /proc, the benchmark's only source of figures about processes. Linux reports process CPU
 * times in USER_HZ ticks, which is 100 on every architecture Node runs on.
 */
export const TICKS_PER_SECOND = 100;

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export interface ProcStat {
  state: string;
  ppid: number;
  /** CPU ticks of the process itself and of its reaped descendants */
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  /** ticks after boot; with the pid it names one process even when pids are reused */
  starttime: number;
}

export function readStat(pid: number): ProcStat | undefined {
  const text = read(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    state: f[0],
    ppid: Number(f[1]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    cutime: Number(f[13]),
    cstime: Number(f[14]),
    starttime: Number(f[19]),
  };
}

export function isAlive(pid: number): boolean {
  const st = readStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

/** Direct children of a process, from every thread's `children` list (a child belongs to the thread that forked it). */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const kids: number[] = [];
  for (const t of tasks) {
    const list = read(`/proc/${pid}/task/${t}/children`);
    if (list) for (const k of list.trim().split(/\s+/)) if (k) kids.push(Number(k));
  }
  return kids;
}

export function processTree(root: number): number[] {
  const all = [root];
  for (let i = 0; i < all.length; i++) all.push(...childrenOf(all[i]));
  return all;
}

/** Peak resident set size of a process so far (VmHWM), in KiB; undefined once it is gone. */
export function peakRssKib(pid: number): number | undefined {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) : undefined;
}

/** CPU ticks of the children this process has reaped (the tool runs, each waited for by the benchmark). */
export function reapedChildTicks(): number {
  const st = readStat(process.pid);
  return st ? st.cutime + st.cstime : 0;
}

export function loadAverage(): number {
  return Number((read('/proc/loadavg') ?? '0').split(' ')[0]);
}

/** The kernel's count of processes created since boot (the `processes` line of /proc/stat). */
export function forksSinceBoot(): number {
  const m = /^processes (\d+)$/m.exec(read('/proc/stat') ?? '');
  return m ? Number(m[1]) : 0;
}

const LISTEN = '0A';
const TIME_WAIT = '06';
const CLOSE = '07';

/** TCP connections with local port `port` that still belong to a live socket (not listening, not TIME_WAIT). */
export function openConnections(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (read(file) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const local = f[1];
      const state = f[3];
      if (local.endsWith(`:${hex}`) && state !== LISTEN && state !== TIME_WAIT && state !== CLOSE) count++;
    }
  }
  return count;
}

export function isListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return (read('/proc/net/tcp') ?? '').split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === `00000000:${hex}` && f[3] === LISTEN;
  });
}
