import type { ErrorClass } from '../../errors';
import type { ApiErrorBody } from './types';

/**
 * Reading Vercel's error answers: which class a failure is, how long a rate limit asks us to wait, and whether an
 * answer is the daily deployment quota. Pure functions over status, headers and body, so each rule has a unit test.
 *
 * Facts relied on (Vercel REST API docs, "Errors" and "Limits"; the Vercel CLI's handling of the same answers):
 * - every error body is `{"error": {"code", "message"}}`; a rate-limited one adds `limit: {remaining, reset,
 *   resetMs, total}`, where `reset` has been seen both in epoch seconds (documented) and epoch milliseconds;
 * - a 429 carries `Retry-After` (seconds) and `X-RateLimit-Limit` / `-Remaining` / `-Reset` (epoch seconds);
 * - limits are counted per endpoint, so one endpoint being limited says nothing of the others;
 * - the daily deployment quota answers with code `api-deployments-free-per-day` (status 402 in reports from the
 *   field, sometimes 429) and a message "Resource is limited - try again in <n> <unit> (more than <total>, ...)";
 *   waiting seconds for it is pointless, so it stops the run instead.
 */

/**
 * The class for "Vercel's quota or rate limit does not let this run go on": not retryable within the run, and
 * not the target's fault. The cast stands until src/errors.ts lists 'quota' among ERROR_CLASSES.
 */
export const QUOTA: ErrorClass = 'quota';

export type VercelOp =
  | 'get-project'
  | 'create-deployment'
  | 'get-deployment'
  | 'cancel-deployment'
  | 'promote'
  | 'rollback'
  | 'list-aliases'
  | 'upload-file';

/** The daily deployment quota as an answer describes it. */
export interface QuotaInfo {
  code: string;
  message: string;
  /** Deployments allowed per day, when the answer says. */
  total?: number;
  /** When the quota frees up again (epoch ms), when the answer says. */
  resetAt?: number;
}

const UNIT_MS: Record<string, number> = {
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};

/** Epoch milliseconds from a value that may be epoch seconds or epoch milliseconds. */
export function epochMs(v: number): number {
  return v > 1e12 ? v : v * 1000;
}

/** `try again in 24 hours` / `in 1 minute` / `in 3h` → milliseconds. */
export function parseTryAgainIn(message: string): number | undefined {
  const m = /try again in (\d+(?:\.\d+)?)\s*(seconds?|minutes?|hours?|days?|s|m|h|d)\b/i.exec(message);
  if (!m) return undefined;
  const unit = m[2].toLowerCase();
  const key = unit.startsWith('s')
    ? 'second'
    : unit.startsWith('m')
      ? 'minute'
      : unit.startsWith('h')
        ? 'hour'
        : 'day';
  return Math.round(Number(m[1]) * UNIT_MS[key]);
}

/** The error object of a body, whatever its top level looked like. */
export function errorBodyOf(body: unknown): ApiErrorBody {
  if (body && typeof body === 'object' && 'error' in body) {
    const e = (body as { error: unknown }).error;
    if (e && typeof e === 'object') return e as ApiErrorBody;
  }
  return {};
}

/**
 * The daily-quota answer, or undefined. Matched by its code (the plan-specific variants all start with
 * `api-deployments` and end in `per-day`), or by the code appearing in the message when a proxy rewrote the body.
 */
export function dailyQuotaOf(status: number, body: unknown, now = Date.now()): QuotaInfo | undefined {
  const e = errorBodyOf(body);
  const code = e.code ?? '';
  const message = e.message ?? '';
  const codeInText = /"?(api-deployments[a-z-]*-per-day)"?/.exec(message)?.[1];
  const quotaCode = /^api-deployments[a-z-]*-per-day$/.test(code) ? code : codeInText;
  if (!quotaCode || status < 400) return undefined;
  let resetAt: number | undefined;
  if (typeof e.limit?.resetMs === 'number') resetAt = e.limit.resetMs;
  else if (typeof e.limit?.reset === 'number') resetAt = epochMs(e.limit.reset);
  else {
    const inMs = parseTryAgainIn(message);
    if (inMs !== undefined) resetAt = now + inMs;
  }
  const totalInText = /more than (\d+)/.exec(message)?.[1];
  const total =
    typeof e.limit?.total === 'number' ? e.limit.total : totalInText ? Number(totalInText) : undefined;
  return { code: quotaCode, message, total, resetAt };
}

/**
 * How long a 429 asks us to wait before the next request to the same endpoint: Retry-After (seconds or an HTTP
 * date), else X-RateLimit-Reset, else the body's `limit.reset`. Undefined when the answer names no time.
 */
export function rateLimitWaitMs(headers: Headers, body: unknown, now = Date.now()): number | undefined {
  const retryAfter = headers.get('retry-after');
  if (retryAfter !== null && retryAfter.trim() !== '') {
    const s = Number(retryAfter);
    if (Number.isFinite(s) && s >= 0) return Math.ceil(s * 1000);
    const date = Date.parse(retryAfter);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  const reset = resetAtFromHeaders(headers);
  if (reset !== undefined) return Math.max(0, reset - now);
  const e = errorBodyOf(body);
  const r = e.limit?.resetMs ?? (typeof e.limit?.reset === 'number' ? epochMs(e.limit.reset) : undefined);
  if (typeof r === 'number' && Number.isFinite(r)) return Math.max(0, r - now);
  return undefined;
}

export function resetAtFromHeaders(headers: Headers): number | undefined {
  const v = headers.get('x-ratelimit-reset');
  if (v === null || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? epochMs(n) : undefined;
}

/**
 * A successful answer that says the endpoint has nothing left (`X-RateLimit-Remaining: 0`): the time the next
 * request may go (epoch ms), so we wait instead of spending a request on a certain 429.
 */
export function exhaustedUntil(headers: Headers): number | undefined {
  const remaining = headers.get('x-ratelimit-remaining');
  if (remaining === null || Number(remaining) > 0 || remaining.trim() === '') return undefined;
  return resetAtFromHeaders(headers);
}

/**
 * The class of a failed answer. 401/403: the token (missing, wrong, expired, or without access to the team or
 * project). 404 of the project: the config names a project that is not there (a typo, or the wrong team); 404 of a
 * deployment: what we expected to exist (a recorded rollback point) is gone. 400/422: Vercel refused a request
 * built from the config (a git repository the project is not connected to, an invalid setting). 409 and other
 * 4xx: the project is not in a state that allows the step. 5xx: Vercel itself is failing, which a later attempt may
 * not meet.
 */
export function classifyStatus(status: number, op: VercelOp): ErrorClass {
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return op === 'get-project' ? 'config' : 'precondition';
  if (status === 400 || status === 422) return 'config';
  if (status === 429 || status === 402) return QUOTA;
  if (status >= 500) return 'unreachable';
  return 'precondition';
}

/** Why a status is what it is, in words a user can act on; appended to the API's own message. */
export function statusHint(status: number, op: VercelOp, tokenEnv: string): string {
  if (status === 401 || status === 403)
    return `check that ${tokenEnv} holds a valid Vercel token with access to this team and project`;
  if (status === 404 && op === 'get-project')
    return 'check the project name or id and the team it belongs to';
  if (status === 404) return 'it no longer exists on Vercel';
  return '';
}
