import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { readStat, TICKS_PER_SECOND } from '../measure/proc';
import type {
  StandinReady,
  StandinReply,
  StandinRequest,
  StandinRequestMessage,
  StandinSettings,
  StandinStats,
} from './protocol';

/** The benchmark's side of a Vercel stand-in child process. */
export interface StandinHandle {
  apiUrl: string;
  caFile: string;
  pid: number;
  addProjects(names: string[]): Promise<Record<string, string>>;
  state(names: string[], since: number): Promise<StandinStats>;
  /** CPU the stand-in has used so far, in seconds */
  cpuSeconds(): number;
  /** Ends the child (asks first, kills after 5 s). */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

/** Last resort on the way out: ends every stand-in child at once. */
export function killStandinsNow(): void {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
}

/**
 * Forks the stand-in (bench/vercel/standin-child.js) with its output in `logFile`, and waits until it serves.
 * `root` is the project's folder, where it finds the stand-in and TypeScript.
 */
export async function startStandin(
  entry: string,
  root: string,
  settings: StandinSettings,
  logFile: string,
): Promise<StandinHandle> {
  const out = fs.openSync(logFile, 'a');
  const child = fork(entry, [root, JSON.stringify(settings)], {
    stdio: ['ignore', out, out, 'ipc'],
    execArgv: [],
  });
  fs.closeSync(out);
  live.add(child);
  let nextId = 1;
  const waiting = new Map<number, { resolve(r: StandinReply): void; reject(e: Error): void }>();
  let gone: Error | undefined;
  const ready = new Promise<StandinReady>((resolve, reject) => {
    child.on('message', (m: StandinReply | StandinReady) => {
      if ('op' in m && m.op === 'ready') return resolve(m);
      const w = waiting.get((m as StandinReply).id);
      waiting.delete((m as StandinReply).id);
      w?.resolve(m as StandinReply);
    });
    child.once('exit', (code, sig) => {
      live.delete(child);
      gone = new Error(`the Vercel stand-in exited (${code ?? sig}); its log: ${logFile}`);
      reject(gone);
      for (const w of waiting.values()) w.reject(gone);
      waiting.clear();
    });
    child.once('error', reject);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const up = await ready.finally(() => clearTimeout(timer));
  const ask = (req: StandinRequest): Promise<StandinReply> => {
    if (gone) return Promise.reject(gone);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      const m: StandinRequestMessage = { ...req, id };
      child.send(m);
    });
  };
  const okOf = async (req: StandinRequest) => {
    const r = await ask(req);
    if (!r.ok) throw new Error(`Vercel stand-in, ${req.op}: ${r.error}`);
    return r;
  };
  return {
    apiUrl: up.apiUrl,
    caFile: up.caFile,
    pid: child.pid ?? 0,
    async addProjects(names) {
      return (await okOf({ op: 'add-projects', names })).productions ?? {};
    },
    async state(names, since) {
      const r = await okOf({ op: 'state', names, since });
      if (!r.stats) throw new Error('Vercel stand-in: no state in its answer');
      return r.stats;
    },
    cpuSeconds() {
      const st = child.pid ? readStat(child.pid) : undefined;
      return st ? (st.utime + st.stime) / TICKS_PER_SECOND : NaN;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await okOf({ op: 'close' }).catch(() => undefined);
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
