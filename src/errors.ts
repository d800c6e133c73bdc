/**
 * Every failure the engine can meet is a value with a class, so the pipeline can decide
 * between retry, rollback and abort without parsing messages.
 */
export const ERROR_CLASSES = [
  'config',
  'unreachable',
  'host-key',
  'auth',
  'timeout',
  'command-failed',
  'health-failed',
  'tests-failed',
  'lock-held',
  'precondition',
  /** A platform's quota is used up (Vercel's deployments per day): waiting the run out does not help. */
  'quota',
  'cancelled',
  'internal',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** Classes where a second attempt can plausibly succeed; host-key, auth and config never can. */
export const RETRYABLE_CLASSES: readonly ErrorClass[] = [
  'unreachable',
  'timeout',
  'command-failed',
  'health-failed',
];

export class DeployError extends Error {
  readonly errorClass: ErrorClass;
  readonly host?: string;
  readonly phase?: string;

  constructor(
    errorClass: ErrorClass,
    message: string,
    opts: { host?: string; phase?: string; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DeployError';
    this.errorClass = errorClass;
    this.host = opts.host;
    this.phase = opts.phase;
  }

  withContext(ctx: { host?: string; phase?: string }): DeployError {
    if ((ctx.host === undefined || this.host) && (ctx.phase === undefined || this.phase)) return this;
    const e = new DeployError(this.errorClass, this.message, {
      host: this.host ?? ctx.host,
      phase: this.phase ?? ctx.phase,
      cause: this.cause,
    });
    e.stack = this.stack;
    return e;
  }
}

export function toDeployError(err: unknown, fallback: ErrorClass = 'internal'): DeployError {
  if (err instanceof DeployError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DeployError(fallback, message, { cause: err });
}

export function isRetryable(err: DeployError, allowed: readonly ErrorClass[] = RETRYABLE_CLASSES): boolean {
  return allowed.includes(err.errorClass) && RETRYABLE_CLASSES.includes(err.errorClass);
}
