import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { ExecResult } from '../../util/shell';

/**
 * Runs shell commands on the runner the way remote commands run on a host: under a time limit, in a process group
 * of their own, killed as a whole on timeout or cancellation, with a bounded tail of their output.
 */

export interface LocalCommandOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Wall-clock limit; at the limit the group gets SIGTERM, then SIGKILL after `graceMs`. */
  timeoutMs: number;
  /** Cancellation: the same kill as a timeout, reported as cancelled. */
  signal?: AbortSignal;
  graceMs?: number;
  /** Applied to every text before it leaves this module (output tails, stdout, stderr). */
  redact?: (text: string) => string;
  /** Characters of output kept (after redaction); default 4000. */
  tailChars?: number;
  stdin?: string | Buffer;
  /** Registry of running groups, so an owner can kill all of them at once (Target.kill). */
  groups?: ProcessGroups;
}

export interface LocalResult extends ExecResult {
  /** stdout and stderr interleaved as they arrived: the tail, redacted, with a note when it was killed. */
  output: string;
  timedOut: boolean;
  cancelled: boolean;
  /** Processes of the group still alive after SIGKILL (stuck in the kernel); empty in any normal case. */
  survivors: number[];
}

const DEFAULT_TAIL = 4000;
const DEFAULT_GRACE_MS = 5000;
/** Once the shell exited, how long to wait for its output pipes to close before we stop reading them. */
const DRAIN_MS = 500;
/** Raw text kept beyond the tail, so redaction sees a secret whole before the tail is cut. */
const MARGIN = 64 * 1024;
/** After SIGKILL, how long to wait for the kernel to reap the group. */
const KILL_WAIT_MS = 5000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Tracks the process groups of commands still running, so they can be killed together. */
export class ProcessGroups {
  private readonly live = new Map<number, (why: 'cancelled') => Promise<void>>();

  add(pgid: number, terminate: (why: 'cancelled') => Promise<void>): void {
    this.live.set(pgid, terminate);
  }

  delete(pgid: number): void {
    this.live.delete(pgid);
  }

  get running(): number[] {
    return [...this.live.keys()];
  }

  /** SIGTERM to every running group, SIGKILL after the grace; resolves once they are gone. */
  async killAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((t) => t('cancelled')));
  }
}

/**
 * The live (non-zombie) members of process group `pgid`. On Linux from /proc, because signal 0 also succeeds for
 * zombies, which an exited process stays in a container whose init does not reap orphans.
 */
export function groupMembers(pgid: number): number[] {
  if (process.platform !== 'linux') {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) S ppid pgrp ...": comm may contain spaces and parentheses, so parse after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] !== 'Z' && Number(f[2]) === pgid) out.push(Number(name));
  }
  return out;
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  // Never our own group, nor init's: a pgid of ours is always a child we spawned detached.
  if (pgid <= 1 || pgid === process.pid) return;
  try {
    process.kill(-pgid, sig);
  } catch {
    /* the group is already gone */
  }
}

async function waitGone(pgid: number, ms: number): Promise<number[]> {
  const until = Date.now() + ms;
  for (;;) {
    const left = groupMembers(pgid);
    if (left.length === 0 || Date.now() >= until) return left;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Keeps the end of a growing text within a bound, without re-slicing on every chunk. */
class Tail {
  text = '';
  cut = false;
  constructor(private readonly keep: number) {}
  add(s: string): void {
    this.text += s;
    if (this.text.length > 2 * this.keep) {
      this.text = this.text.slice(-this.keep);
      this.cut = true;
    }
  }
}

function finish(tail: Tail, chars: number, redact: (t: string) => string): string {
  // Redact first, then cut: a secret straddling the cut would no longer be recognised.
  const text = redact(tail.text);
  return text.length > chars || tail.cut ? '…' + text.slice(-chars) : text;
}

/**
 * Runs `script` with `/bin/sh -c` in its own process group. Resolves for every end (exit, timeout, cancel) with
 * the exit code (null when killed) and redacted output; rejects only when the shell could not be started (a
 * missing cwd). Processes the command leaves running in its group after a normal exit are its business (a
 * daemon it started); on timeout and cancellation the whole group is killed and waited for.
 */
export function runLocal(script: string, o: LocalCommandOptions): Promise<LocalResult> {
  const redact = o.redact ?? ((t: string) => t);
  const chars = o.tailChars ?? DEFAULT_TAIL;
  const graceMs = o.graceMs ?? DEFAULT_GRACE_MS;
  const started = Date.now();
  if (o.signal?.aborted)
    return Promise.resolve({
      code: null,
      stdout: '',
      stderr: '',
      output: '[homelab-deploy] not started: the run was cancelled',
      durationMs: 0,
      timedOut: false,
      cancelled: true,
      survivors: [],
    });
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script], {
      cwd: o.cwd,
      env: o.env,
      detached: true,
      stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const pgid = child.pid;
    const keep = chars + MARGIN;
    const all = new Tail(keep);
    const out = new Tail(keep);
    const err = new Tail(keep);
    const decOut = new StringDecoder('utf8');
    const decErr = new StringDecoder('utf8');
    child.stdout?.on('data', (d: Buffer) => {
      const s = decOut.write(d);
      out.add(s);
      all.add(s);
    });
    child.stderr?.on('data', (d: Buffer) => {
      const s = decErr.write(d);
      err.add(s);
      all.add(s);
    });
    if (o.stdin !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined); // the command may not read its stdin
      child.stdin.end(o.stdin);
    }

    let why: 'timeout' | 'cancelled' | undefined;
    let killing: Promise<number[]> | undefined;
    const terminate = (reason: 'timeout' | 'cancelled'): Promise<void> => {
      if (pgid === undefined) return Promise.resolve();
      if (!killing) {
        why = reason;
        killing = (async () => {
          signalGroup(pgid, 'SIGTERM');
          if ((await waitGone(pgid, graceMs)).length === 0) return [];
          signalGroup(pgid, 'SIGKILL');
          return waitGone(pgid, KILL_WAIT_MS);
        })();
      }
      return killing.then(() => undefined);
    };
    // setTimeout fires at once for delays past 2^31-1 ms (~24.8 days); no command of ours runs that long.
    const timer = setTimeout(() => void terminate('timeout'), Math.min(o.timeoutMs, MAX_TIMER_MS));
    const onAbort = () => void terminate('cancelled');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (pgid !== undefined) o.groups?.add(pgid, terminate);

    const cleanup = () => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (pgid !== undefined) o.groups?.delete(pgid);
    };

    let exited = false;
    child.on('error', (e) => {
      if (exited) return;
      exited = true;
      cleanup();
      reject(e);
    });
    child.on('exit', (code) => {
      exited = true;
      // The command is over: a timer or a cancellation from now on must not kill what it left running.
      cleanup();
      void (async () => {
        const streams = [child.stdout, child.stderr].filter((s) => s !== null);
        const closed = Promise.all(
          streams.map((s) =>
            s.destroyed || s.readableEnded ? undefined : new Promise((r) => s.once('close', r)),
          ),
        );
        let survivors: number[] = [];
        if (killing) survivors = await killing;
        // A process that outlives the shell may hold the pipes open for ever; stop reading after a short drain.
        let drainTimer: NodeJS.Timeout | undefined;
        const drained = await Promise.race([
          closed.then(() => true),
          new Promise<boolean>((r) => (drainTimer = setTimeout(() => r(false), DRAIN_MS))),
        ]);
        clearTimeout(drainTimer);
        if (!drained) for (const s of streams) s.destroy();
        const tailOut = decOut.end();
        const tailErr = decErr.end();
        out.add(tailOut);
        err.add(tailErr);
        all.add(tailOut + tailErr);
        let note = '';
        if (why === 'timeout')
          note = `\n[homelab-deploy] exceeded ${Math.round(o.timeoutMs / 1000)}s and was killed`;
        else if (why === 'cancelled') note = '\n[homelab-deploy] cancelled: the command was killed';
        if (!drained)
          note += '\n[homelab-deploy] a process it started still holds its output; no longer read';
        if (survivors.length)
          note += `\n[homelab-deploy] still alive after SIGKILL: pids ${survivors.join(' ')}`;
        all.add(note);
        resolve({
          code: why ? null : code,
          signal: child.signalCode ?? undefined,
          stdout: finish(out, keep, redact),
          stderr: finish(err, keep, redact),
          output: finish(all, chars, redact),
          durationMs: Date.now() - started,
          timedOut: why === 'timeout',
          cancelled: why === 'cancelled',
          survivors,
        });
      })();
    });
  });
}
