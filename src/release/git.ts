import { spawn } from 'node:child_process';
import { DeployError } from '../errors';

export interface GitOptions {
  cwd: string;
  /** Wall-clock limit; git and what it started (ssh, git-remote-https) are killed as a group at the limit. */
  timeoutMs?: number;
  signal?: AbortSignal;
  stdin?: string;
  /** Environment of the run; git's own prompts are switched off on top of it. */
  env?: NodeJS.ProcessEnv;
}

export interface GitResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cancelled: boolean;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 2000;
const MAX_OUTPUT = 16 * 1024 * 1024;

/** Credentials written into a remote URL (`https://user:token@host/...`) never reach a message. */
export function scrubUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/gi, '$1***@');
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined || pid <= 1 || pid === process.pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    /* already gone */
  }
}

/**
 * Runs git with an argument vector (no shell), in a process group of its own so a timeout or a cancellation
 * also ends the transport it started. Resolves for every exit; rejects only when git could not be started.
 * Terminal prompts are off: a fetch that needs a password fails at once instead of waiting for the timeout.
 */
export function runGit(args: string[], o: GitOptions): Promise<GitResult> {
  if (o.signal?.aborted)
    return Promise.resolve({ code: null, stdout: '', stderr: '', timedOut: false, cancelled: true });
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd: o.cwd,
      // English messages whatever the runner's locale: some are recognised (a missing branch, no tags yet).
      env: { ...(o.env ?? process.env), GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', LC_ALL: 'C' },
      detached: true,
      stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (d: Buffer) => {
      if (size >= MAX_OUTPUT) return;
      size += d.length;
      into.push(d);
    };
    child.stdout?.on('data', collect(out));
    child.stderr?.on('data', collect(err));
    if (o.stdin !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(o.stdin);
    }
    let why: 'timeout' | 'cancelled' | undefined;
    let hardKill: NodeJS.Timeout | undefined;
    const stop = (reason: 'timeout' | 'cancelled') => {
      if (why) return;
      why = reason;
      killGroup(child.pid, 'SIGTERM');
      hardKill = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => stop('timeout'), o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const onAbort = () => stop('cancelled');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e) => {
      done();
      clearTimeout(hardKill);
      reject(new DeployError('internal', `git could not be started: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      done();
      // Whatever git started and left behind in its group goes with it when it was stopped.
      if (why) killGroup(child.pid, 'SIGKILL');
      clearTimeout(hardKill);
      resolve({
        code: why ? null : code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut: why === 'timeout',
        cancelled: why === 'cancelled',
      });
    });
  });
}

/** The last lines git wrote to stderr, for a message: credentials in URLs masked, hints dropped. */
export function gitComplaint(r: GitResult): string {
  const lines = scrubUrls(r.stderr)
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l && !l.startsWith('hint:'));
  return lines.slice(-4).join(' / ') || `exit code ${r.code}`;
}

/** Runs git and returns stdout, or throws a DeployError of `errorClass` that says what failed and why. */
export async function gitOutput(
  args: string[],
  o: GitOptions & { what: string; errorClass?: DeployError['errorClass'] },
): Promise<string> {
  const r = await runGit(args, o);
  if (r.cancelled) throw new DeployError('cancelled', `${o.what}: cancelled`);
  if (r.timedOut)
    throw new DeployError(
      'timeout',
      `${o.what}: git ${args[0]} did not finish within ${Math.round((o.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)}s`,
    );
  if (r.code !== 0)
    throw new DeployError(
      o.errorClass ?? 'command-failed',
      `${o.what}: git ${args[0]} failed: ${gitComplaint(r)}`,
    );
  return r.stdout;
}
