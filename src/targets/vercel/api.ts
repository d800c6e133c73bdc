import { DeployError } from '../../errors';
import type { Redactor } from '../../secrets/redact';
import { formatDuration, sleep } from '../../util/duration';
import { mapLimit } from '../../util/concurrency';
import {
  classifyStatus,
  dailyQuotaOf,
  errorBodyOf,
  exhaustedUntil,
  rateLimitWaitMs,
  statusHint,
  type VercelOp,
} from './errors';
import type { VercelPacing, WaitBudget } from './pacing';
import { teamQuery, type FileDigest } from './requests';
import type {
  AliasRequestView,
  AliasView,
  CreateDeploymentBody,
  DeploymentView,
  ProjectDeploymentView,
  ProjectView,
} from './types';

/**
 * A small client for the Vercel REST API endpoints a deploy needs. The token is read from the environment on
 * first use, registered with the run's redactor before any request, and sent only in `Authorization: Bearer`;
 * it is never part of a URL, a log line or an error. Every request has its own time limit and follows the run's
 * cancellation; rate limits and the daily quota go through the shared pacing.
 *
 * Endpoints (Vercel REST API reference): POST /v13/deployments, GET /v13/deployments/{idOrUrl},
 * PATCH /v12/deployments/{id}/cancel, GET /v9/projects/{idOrName}, POST /v10/projects/{projectId}/promote/{id}
 * (body `{}`, answers 201/202, switches domains asynchronously), POST /v1/projects/{projectId}/rollback/{id},
 * GET /v2/deployments/{id}/aliases, POST /v2/files (raw bytes, `x-vercel-digest: <sha1>`). Team scope is the
 * `teamId` or `slug` query parameter on each of them.
 */

export interface VercelApiSettings {
  apiUrl: string;
  /** Team id (team_...) or slug; none for a personal account. */
  team?: string;
  tokenEnv: string;
  /** Limit for one request (connect, answer and body). */
  requestTimeoutMs: number;
}

export interface VercelApiDeps {
  env: NodeJS.ProcessEnv;
  redactor: Redactor;
  pacing: VercelPacing;
  /** The run's cancellation, the default for every call. */
  signal: AbortSignal;
}

export interface CallOptions {
  /** For messages: what the call is about ("shop: create deployment"). */
  what: string;
  /** Replaces the run's signal (kill() cancels builds after the run was cancelled). */
  signal?: AbortSignal;
}

interface RequestSpec {
  op: VercelOp;
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  query?: Record<string, string>;
  json?: unknown;
  raw?: { data: Buffer; headers: Record<string, string> };
  /** Safe to send again after a lost answer or a 5xx (reads, and switches to an explicit deployment). */
  idempotent: boolean;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const SERVER_RETRIES = 2;
const UPLOAD_PARALLEL = 8;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'string') out[k] = x;
  return out;
}

function strList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function malformed(what: string, field: string): DeployError {
  return new DeployError('unreachable', `${what}: Vercel's answer has no ${field}; is api_url a Vercel API?`);
}

export function readDeployment(body: unknown, what: string): DeploymentView {
  const b = (body ?? {}) as Record<string, unknown>;
  const id = str(b.id);
  const readyState = str(b.readyState);
  if (!id) throw malformed(what, 'deployment id');
  if (!readyState) throw malformed(what, 'readyState');
  return {
    id,
    url: str(b.url) ?? '',
    readyState: readyState as DeploymentView['readyState'],
    readySubstate: str(b.readySubstate) as DeploymentView['readySubstate'],
    readyStateReason: str(b.readyStateReason),
    target: str(b.target) ?? null,
    meta: strMap(b.meta),
    alias: strList(b.alias),
    errorCode: str(b.errorCode),
    errorMessage: str(b.errorMessage) ?? null,
    createdAt: typeof b.createdAt === 'number' ? b.createdAt : undefined,
    projectId: str(b.projectId),
  };
}

function readProjectDeployment(v: unknown): ProjectDeploymentView | null {
  if (!v || typeof v !== 'object') return null;
  const b = v as Record<string, unknown>;
  const id = str(b.id);
  if (!id) return null;
  return {
    id,
    url: str(b.url) ?? '',
    readyState: str(b.readyState),
    meta: strMap(b.meta),
    alias: strList(b.alias),
    createdAt: typeof b.createdAt === 'number' ? b.createdAt : undefined,
  };
}

function readAliasRequest(v: unknown): AliasRequestView | null {
  if (!v || typeof v !== 'object') return null;
  const b = v as Record<string, unknown>;
  const to = str(b.toDeploymentId);
  const jobStatus = str(b.jobStatus);
  if (!to || !jobStatus) return null;
  return {
    type: (str(b.type) ?? 'promote') as AliasRequestView['type'],
    jobStatus: jobStatus as AliasRequestView['jobStatus'],
    toDeploymentId: to,
    fromDeploymentId: str(b.fromDeploymentId) ?? null,
    requestedAt: typeof b.requestedAt === 'number' ? b.requestedAt : 0,
  };
}

export function readProject(body: unknown, what: string): ProjectView {
  const b = (body ?? {}) as Record<string, unknown>;
  const id = str(b.id);
  if (!id) throw malformed(what, 'project id');
  const targets = (b.targets ?? {}) as Record<string, unknown>;
  return {
    id,
    name: str(b.name) ?? id,
    accountId: str(b.accountId),
    production: readProjectDeployment(targets.production),
    lastAliasRequest: readAliasRequest(b.lastAliasRequest),
  };
}

export class VercelApi {
  /** Requests sent (every attempt counts), for the report and the benchmark. */
  requests = 0;
  private token?: string;
  private readonly uploads = new Map<string, Promise<void>>();

  constructor(
    readonly settings: VercelApiSettings,
    private readonly deps: VercelApiDeps,
  ) {}

  get pacing(): VercelPacing {
    return this.deps.pacing;
  }

  /** The token, registered with the redactor before it can appear anywhere; a `config` error when unset. */
  bearer(what = 'Vercel'): string {
    if (this.token !== undefined) return this.token;
    const t = this.deps.env[this.settings.tokenEnv]?.trim();
    if (!t)
      throw new DeployError(
        'config',
        `${what}: the Vercel token variable ${this.settings.tokenEnv} is not set (or empty) in the environment; set it from a secret, or name another variable in token_env`,
      );
    this.deps.redactor.add(t, this.settings.tokenEnv);
    this.token = t;
    return t;
  }

  private url(spec: RequestSpec): string {
    const u = new URL(
      spec.path,
      this.settings.apiUrl.endsWith('/') ? this.settings.apiUrl : `${this.settings.apiUrl}/`,
    );
    for (const [k, v] of Object.entries({ ...spec.query, ...teamQuery(this.settings.team) }))
      u.searchParams.set(k, v);
    return u.toString();
  }

  /** What a message calls the request: method and path with the team query, never a header. */
  private label(spec: RequestSpec): string {
    const u = new URL(this.url(spec));
    return `${spec.method} ${u.pathname}${u.search}`;
  }

  private redact(text: string): string {
    return this.deps.redactor.redact(text);
  }

  private async send<T = unknown>(spec: RequestSpec, o: CallOptions): Promise<{ status: number; body: T }> {
    const signal = o.signal ?? this.deps.signal;
    const token = this.bearer(o.what);
    const budget: WaitBudget = { waitedMs: 0 };
    const pacing = this.deps.pacing;
    const label = this.label(spec);
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new DeployError('cancelled', `${o.what}: cancelled before ${label}`);
      await pacing.beforeRequest(spec.op, budget, signal, o.what);
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'user-agent': 'homelab-deploy',
      };
      let body: string | Buffer | undefined;
      if (spec.raw) {
        Object.assign(headers, spec.raw.headers);
        body = spec.raw.data;
      } else if (spec.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(spec.json);
      }
      this.requests++;
      let res: { status: number; headers: Headers; text: string };
      try {
        res = await this.fetchOnce(this.url(spec), spec.method, headers, body, signal);
      } catch (e) {
        const err = this.transportError(e, label, o.what, signal);
        if (spec.idempotent && attempt < SERVER_RETRIES && err.errorClass !== 'cancelled') {
          await sleep(500 * 2 ** attempt, signal);
          continue;
        }
        throw err;
      }
      const until = exhaustedUntil(res.headers);
      if (until !== undefined) pacing.closeGate(spec.op, until);
      let parsed: unknown = undefined;
      if (res.text) {
        try {
          parsed = JSON.parse(res.text);
        } catch {
          parsed = res.text;
        }
      }
      if (res.status >= 200 && res.status < 300) return { status: res.status, body: parsed as T };
      const quota = dailyQuotaOf(res.status, parsed);
      if (quota) throw pacing.stopForQuota(quota, o.what);
      if (res.status === 429) {
        // Honour the later of what the answer names (Retry-After, the reset), so the retry is not refused again.
        const named = rateLimitWaitMs(res.headers, parsed) ?? Math.min(60_000, 1000 * 2 ** attempt);
        const ms = Math.max(named, until !== undefined ? until - Date.now() : 0);
        await pacing.rateLimited(spec.op, ms, budget, signal, o.what);
        continue;
      }
      if (res.status >= 500 && spec.idempotent && attempt < SERVER_RETRIES) {
        await sleep(500 * 2 ** attempt, signal);
        continue;
      }
      throw this.statusError(spec, res.status, parsed, label, o.what);
    }
  }

  private async fetchOnce(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: string | Buffer | undefined,
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Headers; text: string }> {
    // One controller for the time limit and the run's cancellation, with a plain timer: the body read below stays
    // under the same limit as the request.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new TimeoutSignal()), this.settings.requestTimeoutMs);
    const onAbort = () => ac.abort(new CancelSignal());
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await fetch(url, { method, headers, body, signal: ac.signal });
      const text = await res.text();
      return { status: res.status, headers: res.headers, text };
    } catch (e) {
      if (ac.signal.aborted) throw ac.signal.reason;
      throw e;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private transportError(e: unknown, label: string, what: string, signal: AbortSignal): DeployError {
    if (e instanceof CancelSignal || signal.aborted)
      return new DeployError('cancelled', `${what}: cancelled during ${label}`);
    if (e instanceof TimeoutSignal)
      return new DeployError(
        'timeout',
        `${what}: ${label} got no complete answer within ${formatDuration(this.settings.requestTimeoutMs)}`,
      );
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
    return new DeployError(
      'unreachable',
      this.redact(
        `${what}: could not reach the Vercel API at ${new URL(this.settings.apiUrl).origin} for ${label} (${detail})`,
      ),
      { cause: e },
    );
  }

  private statusError(
    spec: RequestSpec,
    status: number,
    body: unknown,
    label: string,
    what: string,
  ): DeployError {
    const e = errorBodyOf(body);
    const said = e.message ?? (typeof body === 'string' ? body.slice(0, 200) : '');
    const hint = statusHint(status, spec.op, this.settings.tokenEnv);
    const team = this.settings.team ? ` (team ${this.settings.team})` : '';
    return new DeployError(
      classifyStatus(status, spec.op),
      this.redact(
        `${what}: ${label} answered ${status}${e.code ? ` ${e.code}` : ''}${said ? `: ${said}` : ''}${team}${hint ? `; ${hint}` : ''}`,
      ),
    );
  }

  async getProject(idOrName: string, o: CallOptions): Promise<ProjectView> {
    const r = await this.send(
      {
        op: 'get-project',
        method: 'GET',
        path: `v9/projects/${encodeURIComponent(idOrName)}`,
        idempotent: true,
      },
      o,
    );
    return readProject(r.body, o.what);
  }

  async createDeployment(body: CreateDeploymentBody, o: CallOptions): Promise<DeploymentView> {
    // Not idempotent: a lost answer may still have created the deployment, and a second one costs quota.
    const r = await this.send(
      { op: 'create-deployment', method: 'POST', path: 'v13/deployments', json: body, idempotent: false },
      o,
    );
    return readDeployment(r.body, o.what);
  }

  async getDeployment(idOrUrl: string, o: CallOptions): Promise<DeploymentView> {
    const r = await this.send(
      {
        op: 'get-deployment',
        method: 'GET',
        path: `v13/deployments/${encodeURIComponent(idOrUrl)}`,
        idempotent: true,
      },
      o,
    );
    return readDeployment(r.body, o.what);
  }

  async cancelDeployment(id: string, o: CallOptions): Promise<DeploymentView> {
    const r = await this.send(
      {
        op: 'cancel-deployment',
        method: 'PATCH',
        path: `v12/deployments/${encodeURIComponent(id)}/cancel`,
        idempotent: true,
      },
      o,
    );
    return readDeployment(r.body, o.what);
  }

  async promote(projectId: string, deploymentId: string, o: CallOptions): Promise<void> {
    await this.send(
      {
        op: 'promote',
        method: 'POST',
        path: `v10/projects/${encodeURIComponent(projectId)}/promote/${encodeURIComponent(deploymentId)}`,
        json: {},
        idempotent: true,
      },
      o,
    );
  }

  async rollback(
    projectId: string,
    deploymentId: string,
    description: string,
    o: CallOptions,
  ): Promise<void> {
    await this.send(
      {
        op: 'rollback',
        method: 'POST',
        path: `v1/projects/${encodeURIComponent(projectId)}/rollback/${encodeURIComponent(deploymentId)}`,
        query: { description },
        idempotent: true,
      },
      o,
    );
  }

  async listAliases(deploymentId: string, o: CallOptions): Promise<AliasView[]> {
    const r = await this.send<{ aliases?: unknown }>(
      {
        op: 'list-aliases',
        method: 'GET',
        path: `v2/deployments/${encodeURIComponent(deploymentId)}/aliases`,
        idempotent: true,
      },
      o,
    );
    const list = Array.isArray(r.body?.aliases) ? (r.body.aliases as Record<string, unknown>[]) : [];
    return list
      .filter((a) => typeof a?.alias === 'string')
      .map((a) => ({ alias: a.alias as string, uid: str(a.uid) ?? '', redirect: str(a.redirect) ?? null }));
  }

  /**
   * Uploads every file Vercel does not have from this run yet. Files are content-addressed per team, so the same
   * content deployed to many projects of one team is sent once.
   */
  async ensureUploaded(files: readonly FileDigest[], o: CallOptions): Promise<void> {
    const fresh: FileDigest[] = [];
    const pending: Promise<void>[] = [];
    for (const f of files) {
      const known = this.uploads.get(f.sha);
      if (known) pending.push(known);
      else if (!fresh.some((x) => x.sha === f.sha)) fresh.push(f);
    }
    const started = fresh.map((f) => {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const p = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      // A failed upload is forgotten, so a later attempt sends it again.
      p.catch(() => this.uploads.delete(f.sha));
      this.uploads.set(f.sha, p);
      return { f, resolve, reject, p };
    });
    await mapLimit(started, UPLOAD_PARALLEL, async (u) => {
      try {
        await this.send(
          {
            op: 'upload-file',
            method: 'POST',
            path: 'v2/files',
            raw: {
              data: u.f.data,
              headers: {
                'content-type': 'application/octet-stream',
                'content-length': String(u.f.size),
                'x-vercel-digest': u.f.sha,
              },
            },
            idempotent: true,
          },
          { ...o, what: `${o.what} (upload ${u.f.path})` },
        );
        u.resolve();
      } catch (e) {
        u.reject(e);
      }
    });
    await Promise.all([...pending, ...started.map((u) => u.p)]);
  }
}

class TimeoutSignal extends Error {}
class CancelSignal extends Error {}
