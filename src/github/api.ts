import { sleep } from '../util/duration';

export interface ApiResult {
  ok: boolean;
  status: number; // 0 = no answer
  body: unknown;
  error?: string;
}

export interface ApiOptions {
  token: string;
  attempts?: number;
  timeoutMs?: number;
  maxDelayMs?: number;
}

/** Retry-After in seconds, or the rate-limit reset, as milliseconds; undefined when the answer gives neither. */
function serverDelay(res: Response): number | undefined {
  const after = res.headers.get('retry-after');
  if (after && /^\d+$/.test(after)) return Number(after) * 1000;
  if (res.headers.get('x-ratelimit-remaining') === '0') {
    const reset = Number(res.headers.get('x-ratelimit-reset'));
    if (reset) return Math.max(0, reset * 1000 - Date.now());
  }
  return undefined;
}

/**
 * A GitHub REST call that retries what GitHub says is temporary (5xx, 429, 403 secondary rate limits) with
 * backoff, and never throws: a status update must never change a deploy. The API lives at GITHUB_API_URL, which
 * the runner sets (GitHub Enterprise Server has its own); there is deliberately no other way to point it elsewhere,
 * so tests exercise the same lookup the action does.
 */
export async function githubRequest(
  method: string,
  path: string,
  body: unknown,
  opts: ApiOptions,
): Promise<ApiResult> {
  const base = (process.env.GITHUB_API_URL || 'https://api.github.com').replace(/\/$/, '');
  const attempts = opts.attempts ?? 4;
  let last: ApiResult = { ok: false, status: 0, body: undefined };
  for (let i = 1; i <= attempts; i++) {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: {
          authorization: `Bearer ${opts.token}`,
          accept: 'application/vnd.github+json',
          'x-github-api-version': '2022-11-28',
          'content-type': 'application/json',
          'user-agent': 'homelab-deploy',
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
    } catch (err) {
      last = {
        ok: false,
        status: 0,
        body: undefined,
        error:
          (err as Error).name === 'TimeoutError'
            ? 'timed out'
            : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message),
      };
      if (i < attempts) await sleep(Math.min(opts.maxDelayMs ?? 8000, 500 * 2 ** (i - 1)));
      continue;
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep text */
    }
    last = { ok: res.ok, status: res.status, body: parsed };
    if (res.ok) return last;
    const message =
      typeof parsed === 'object' && parsed && 'message' in parsed
        ? String((parsed as { message: unknown }).message)
        : text.slice(0, 200);
    last.error = message;
    const secondary =
      res.status === 403 &&
      (/secondary rate limit/i.test(message) ||
        res.headers.has('retry-after') ||
        res.headers.get('x-ratelimit-remaining') === '0');
    const retryable = res.status >= 500 || res.status === 429 || secondary;
    if (!retryable || i === attempts) return last;
    const wait = serverDelay(res) ?? 500 * 2 ** (i - 1) * (0.8 + Math.random() * 0.4);
    await sleep(Math.min(opts.maxDelayMs ?? 8000, wait));
  }
  return last;
}
