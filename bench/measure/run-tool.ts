import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { peakRssKib, processTree, reapedChildTicks, TICKS_PER_SECOND } from './proc';

export interface CommandSpec {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr of the tool go here, never through the benchmark's own event loop */
  logFile: string;
  timeoutMs: number;
}

export interface ToolFigures {
  wallMs: number;
  /** largest VmHWM of any process of the tool's tree (like /usr/bin/time, not a sum), KiB */
  peakRssKib: number;
  /** user + system CPU of the tool and everything it waited for */
  clientCpuSeconds: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  interrupted: boolean;
}

const POLL_MS = 100;
const KILL_GRACE_MS = 5000;

/**
 * Runs one tool command and measures it from outside. The tool gets a process group of its own, so a timeout
 * or Ctrl-C ends it with everything it started. Peak RSS is polled (VmHWM only grows, so a poll misses at
 * most what a process gained in its last interval); CPU comes from the benchmark's reaped-children times,
 * which grow only by the tool's share because nothing else is spawned while it runs.
 */
export function runTool(spec: CommandSpec, signal?: AbortSignal, pollMs = POLL_MS): Promise<ToolFigures> {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(spec.logFile, 'a');
    const ticks0 = reapedChildTicks();
    const t0 = performance.now();
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    const peaks = new Map<number, number>();
    let timedOut = false;
    let interrupted = false;
    const poll = () => {
      if (child.pid === undefined) return;
      for (const pid of processTree(child.pid)) {
        const kib = peakRssKib(pid);
        if (kib !== undefined && kib > (peaks.get(pid) ?? 0)) peaks.set(pid, kib);
      }
    };
    const timer = setInterval(poll, pollMs);
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // the group is gone already
      }
    };
    let graceTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      killGroup('SIGTERM');
      graceTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    const deadline = setTimeout(() => {
      timedOut = true;
      stop();
    }, spec.timeoutMs);
    const onAbort = () => {
      interrupted = true;
      stop();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    poll();
    child.once('error', (err) => {
      clearInterval(timer);
      clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
      reject(new Error(`could not start ${spec.command}: ${err.message}`));
    });
    child.once('exit', (code, sig) => {
      const wallMs = performance.now() - t0;
      clearInterval(timer);
      clearTimeout(deadline);
      if (graceTimer) clearTimeout(graceTimer);
      signal?.removeEventListener('abort', onAbort);
      // Children the tool left behind in its group would keep running; they are not part of the next run.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // none left
        }
      }
      resolve({
        wallMs,
        peakRssKib: Math.max(0, ...peaks.values()),
        clientCpuSeconds: (reapedChildTicks() - ticks0) / TICKS_PER_SECOND,
        exitCode: code,
        signal: sig,
        timedOut,
        interrupted,
      });
    });
  });
}
