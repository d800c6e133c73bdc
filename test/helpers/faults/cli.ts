import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The CLI as a user runs it: a separate `node <cli> ...` process with its own signals and exit code. The bundle is
 * dist/cli/index.js unless HD_CLI names another (a bundle of the current sources, while developing).
 */
export const CLI = process.env.HD_CLI ?? path.join(__dirname, '..', '..', '..', 'dist', 'cli', 'index.js');

/** The action bundle, run the way the Actions runner runs it; HD_ACTION overrides dist/index.js likewise. */
export const ACTION = process.env.HD_ACTION ?? path.join(__dirname, '..', '..', '..', 'dist', 'index.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<ChildProcess>();
// A test that fails half way must not leave CLIs running into the next test or past the suite.
process.once('exit', () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** The end of a process's output, for failure messages (the whole of it is in the cell's log file). */
export const tail = (text: string, lines = 12) => text.trimEnd().split('\n').slice(-lines).join('\n');

export class CliProcess {
  readonly child: ChildProcess;
  output = '';
  /** stdout alone (`output` interleaves stderr), for commands whose stdout is a document, e.g. `--json`. */
  stdout = '';
  readonly exited: Promise<Exit>;
  private readonly watchers: { re: RegExp; resolve: () => void }[] = [];

  constructor(
    readonly label: string,
    script: string,
    args: string[],
    opts: { env: NodeJS.ProcessEnv; cwd?: string },
  ) {
    this.child = spawn(process.execPath, [script, ...args], {
      env: opts.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.child);
    const on = (d: Buffer) => {
      this.output += d.toString();
      for (const w of [...this.watchers])
        if (w.re.test(this.output)) {
          this.watchers.splice(this.watchers.indexOf(w), 1);
          w.resolve();
        }
    };
    this.child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      on(d);
    });
    this.child.stderr?.on('data', on);
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => {
        live.delete(this.child);
        resolve({ code, signal });
      }),
    );
  }

  /** Resolves once the output (stdout and stderr together) matches `re`; fails after `timeoutMs` or at exit. */
  async waitFor(re: RegExp, timeoutMs = 60_000): Promise<void> {
    if (re.test(this.output)) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.watchers.push({ re, resolve })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `${this.label}: no ${re} within ${timeoutMs / 1000}s; output ends:\n${tail(this.output)}`,
                ),
              ),
            timeoutMs,
          );
        }),
        this.exited.then((e) => {
          if (!re.test(this.output))
            throw new Error(
              `${this.label} exited (${e.code ?? e.signal}) before ${re}; output ends:\n${tail(this.output)}`,
            );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  /** Waits for the exit; a process still running after `timeoutMs` is killed and the wait fails. */
  async exit(timeoutMs = 180_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.signal('SIGKILL');
        reject(
          new Error(
            `${this.label} still ran after ${timeoutMs / 1000}s (killed); output ends:\n${tail(this.output)}`,
          ),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, limit]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export function killAllClis(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
