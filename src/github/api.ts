import { getOctokit } from '@actions/github';
import { defaults } from '@actions/github/lib/utils';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { sleep } from '../util/duration';

export interface ApiOptions {
  token: string;
  /** Tries per call, the first included (default 4). */
  attempts?: number;
  /** Limit on one attempt (default 10 s). */
  timeoutMs?: number;
  /**
   * Milliseconds per second of waiting: 5xx answers wait 1, 4, 9... units (plugin-retry's backoff), rate limits
   * the seconds GitHub names. 1000 outside tests, which shrink it so a Retry-After of 2 s takes 2 ms.
   */
  unitMs?: number;
  /** Longest rate-limit pause (seconds, as GitHub names it) worth waiting for; beyond it the call gives up. */
  maxRetryAfterSeconds?: number;
  /** Pause between the starts of two writes (GitHub asks for at least a second; default 1000). */
  writeIntervalMs?: number;
  /** Ends every call of the client, retries included, when aborted. */
  signal?: AbortSignal;
}

/** What a call came to; never an exception. */
export interface ApiResult<T = unknown> {
  ok: boolean;
  status: number; // 0 = no answer
  body: T | undefined;
  error?: string;
  /** GitHub refused for a rate limit (primary or secondary), not for a missing permission. */
  rateLimited?: boolean;
}

/** Answers GitHub never changes its mind about within a run, so retrying them only costs time. */
const DO_NOT_RETRY = [400, 401, 403, 404, 405, 409, 410, 413, 422, 429, 451];

/**
 * A write limiter shaped like the Bottleneck group plugin-throttling takes (`throttle.write`): starts are at
 * least `intervalMs` apart. Shared by every client of the process with the same interval, as GitHub counts the
 * token's writes, not the client's.
 */
const spacers = new Map<number, unknown>();
function writeSpacer(intervalMs: number) {
  let spacer = spacers.get(intervalMs);
  if (!spacer) {
    let next = 0;
    const limiter = {
      async schedule(...args: unknown[]) {
        const [fn, ...rest] = (typeof args[0] === 'function' ? args : args.slice(1)) as [
          (...a: unknown[]) => unknown,
          ...unknown[],
        ];
        const now = Date.now();
        const wait = Math.max(0, next - now);
        next = Math.max(now, next) + intervalMs;
        if (wait) await sleep(wait);
        return fn(...rest);
      },
    };
    spacer = { key: () => limiter };
    spacers.set(intervalMs, spacer);
  }
  return spacer;
}

/**
 * The toolkit's Octokit with the retry and throttling plugins GitHub recommends: 5xx and network errors are
 * retried with backoff, 403/429 rate limits after the pause GitHub names (Retry-After, or x-ratelimit-reset), when
 * that pause is short enough to be worth it. The API lives at GITHUB_API_URL, which the runner sets (GitHub
 * Enterprise Server has its own); it is read when the client is made, so tests exercise the lookup the action uses.
 */
export function githubClient(opts: ApiOptions) {
  const attempts = Math.max(1, opts.attempts ?? 4);
  const unitMs = opts.unitMs ?? 1000;
  const maxWait = opts.maxRetryAfterSeconds ?? 30;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const baseFetch = (defaults.request?.fetch ?? fetch) as typeof fetch;
  // One limit per attempt, not per call: each retry gets the full time again.
  const timedFetch: typeof fetch = (url, init) =>
    baseFetch(url, {
      ...init,
      signal: init?.signal
        ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)])
        : AbortSignal.timeout(timeoutMs),
    });
  const onLimit = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) =>
    retryCount < attempts - 1 && retryAfter <= maxWait;
  const quiet = () => undefined;
  return getOctokit(
    opts.token,
    {
      baseUrl: (process.env.GITHUB_API_URL || 'https://api.github.com').replace(/\/$/, ''),
      userAgent: 'homelab-deploy',
      request: { ...defaults.request, fetch: timedFetch, ...(opts.signal ? { signal: opts.signal } : {}) },
      // Failures are reported once, by the caller, as warnings that say what they mean for the deploy.
      log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
      retry: { retries: attempts - 1, retryAfterBaseValue: unitMs, doNotRetry: DO_NOT_RETRY },
      throttle: {
        onRateLimit: onLimit,
        onSecondaryRateLimit: onLimit,
        retryAfterBaseValue: unitMs,
        write: writeSpacer(opts.writeIntervalMs ?? 1000) as never,
      },
    },
    retry,
    throttling,
  );
}

export type GitHubClient = ReturnType<typeof githubClient>;

interface OctokitFailure {
  status?: number;
  message?: string;
  response?: { data?: unknown; headers?: Record<string, string | undefined> };
  name?: string;
  cause?: { cause?: { code?: string }; code?: string; name?: string };
}

/** A failed call as a result: HTTP status (0 for no answer), GitHub's message, and whether it was a rate limit. */
export function failureOf(err: unknown): ApiResult<never> {
  const e = err as OctokitFailure;
  const headers = e.response?.headers ?? {};
  if (!e.response && e.name === 'AbortError')
    return { ok: false, status: 0, body: undefined, error: 'stopped by the caller' };
  if (!e.response) {
    const code = e.cause?.cause?.code ?? e.cause?.code;
    const timedOut = e.cause?.name === 'TimeoutError' || /timeout|aborted/i.test(e.message ?? '');
    return { ok: false, status: 0, body: undefined, error: timedOut ? 'timed out' : (code ?? e.message) };
  }
  const data = e.response.data;
  const message =
    typeof data === 'object' && data && 'message' in data
      ? String((data as { message: unknown }).message)
      : (e.message ?? String(data ?? '')).slice(0, 200);
  const status = e.status ?? 0;
  const rateLimited =
    (status === 403 || status === 429) &&
    (/rate limit/i.test(message) || headers['x-ratelimit-remaining'] === '0' || 'retry-after' in headers);
  return { ok: false, status, body: undefined, error: message, rateLimited };
}

/** Runs one client call to its end, retries included, and says how it went; never throws. */
export async function attempt<R extends { status: number; data: unknown }>(
  call: () => Promise<R>,
): Promise<ApiResult<R['data']>> {
  try {
    const res = await call();
    return { ok: true, status: res.status, body: res.data };
  } catch (err) {
    return failureOf(err);
  }
}

export interface ReleaseTag {
  owner: string;
  repo: string;
  /** Tag name without refs/tags/, e.g. v2026.07.01-1. */
  tag: string;
  /** The full commit SHA the tag marks. */
  sha: string;
  message: string;
}

export type ReleaseTagResult =
  { ok: true; created: boolean; ref: string; tagSha?: string } | { ok: false; status: number; error: string };

/**
 * An annotated release tag: a tag object for the commit, then the `refs/tags/<tag>` ref pointing at it. A tag
 * that already marks the same commit counts as done (a re-run); one that marks another commit is an error, never
 * moved. Never throws: a tag is a record of the deploy, not part of it.
 */
export async function createReleaseTag(
  t: ReleaseTag,
  opts: ApiOptions | { client: GitHubClient },
): Promise<ReleaseTagResult> {
  const gh = 'client' in opts ? opts.client : githubClient(opts);
  const ref = `refs/tags/${t.tag}`;
  if (!/^[0-9a-f]{40}$/.test(t.sha))
    return { ok: false, status: 0, error: `release tag ${t.tag}: "${t.sha}" is not a full commit SHA` };
  const existing = async (): Promise<ReleaseTagResult | undefined> => {
    const found = await attempt(() =>
      gh.rest.git.getRef({ owner: t.owner, repo: t.repo, ref: `tags/${t.tag}` }),
    );
    if (!found.ok || !found.body) return undefined;
    const obj = found.body.object;
    let commit = obj.sha;
    if (obj.type === 'tag') {
      const tagObj = await attempt(() =>
        gh.rest.git.getTag({ owner: t.owner, repo: t.repo, tag_sha: obj.sha }),
      );
      if (!tagObj.ok || !tagObj.body) return undefined;
      commit = tagObj.body.object.sha;
    }
    return commit === t.sha
      ? { ok: true, created: false, ref, tagSha: obj.type === 'tag' ? obj.sha : undefined }
      : {
          ok: false,
          status: 422,
          error: `release tag ${t.tag} already exists on commit ${commit}, not ${t.sha}; it is left as it is`,
        };
  };
  const tagObject = await attempt(() =>
    gh.rest.git.createTag({
      owner: t.owner,
      repo: t.repo,
      tag: t.tag,
      message: t.message,
      object: t.sha,
      type: 'commit',
    }),
  );
  if (!tagObject.ok || !tagObject.body)
    return {
      ok: false,
      status: tagObject.status,
      error: `release tag ${t.tag}: ${tagObject.error ?? 'no answer'}`,
    };
  const tagSha = tagObject.body.sha;
  const created = await attempt(() =>
    gh.rest.git.createRef({ owner: t.owner, repo: t.repo, ref, sha: tagSha }),
  );
  if (created.ok) return { ok: true, created: true, ref, tagSha };
  // 422 "Reference already exists": a re-run, or a tag someone else made.
  if (created.status === 422) {
    const prior = await existing();
    if (prior) return prior;
  }
  return {
    ok: false,
    status: created.status,
    error: `release tag ${t.tag}: ${created.error ?? 'no answer'}`,
  };
}
