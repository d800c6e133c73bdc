/**
 * Running a shell script somewhere (on an SSH host, on the runner) and what comes back. Only types: the SSH
 * connection and the runner's local executor both speak this, so health checks and snapshot providers can run a
 * command without knowing where.
 */
export interface ExecOptions {
  /**
   * Wall-clock limit for this command, enforced where it runs. Precedence on SSH hosts: this value (the step's own
   * limit, e.g. a health check's `timeout` or `deploy.timeout`), else the host's `ssh.command_timeout`, else 10 minutes.
   */
  timeoutMs?: number;
  stdin?: string | Buffer;
  signal?: AbortSignal;
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface Shell {
  /** Resolves with the exit code for any exit; rejects only when the command could not run to an exit. */
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
}
