import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { selfSignedCert } from './tls';
import type { Config, HealthCheck, VercelTargetConfig } from '../../src/config/types';
import { probeHttp } from '../../src/health/http';
import { HealthFailed } from '../../src/pipeline/health-gate';
import type { HealthReport } from '../../src/report/types';
import { makeContext, type RunContext } from '../../src/run/context';
import type { DeployEvent } from '../../src/run/events';
import { Redactor } from '../../src/secrets/redact';
import type { HealthSubject } from '../../src/targets/target';
import { renderTemplate } from '../../src/util/template';

/**
 * A local stand-in for the Vercel REST API (node:http on 127.0.0.1, a random port), answering the endpoints a
 * deploy uses with the shapes Vercel documents:
 *
 *   POST  /v13/deployments                     create (gitSource | files | deploymentId), QUEUED → BUILDING → READY/ERROR
 *   GET   /v13/deployments/{id}                readyState, readySubstate, url, alias, meta, errorCode/errorMessage
 *   PATCH /v12/deployments/{id}/cancel         → CANCELED
 *   GET   /v9/projects/{idOrName}              targets.production, latestDeployments, lastAliasRequest
 *   POST  /v10/projects/{id}/promote/{depId}   READY production deployments only; switches after `promoteMs`
 *   POST  /v1/projects/{id}/rollback/{depId}   deployments that served production before; switches after `rollbackMs`
 *   GET   /v2/deployments/{id}/aliases         {aliases: [{uid, alias, created, redirect}]}
 *   POST  /v2/files                            raw bytes, x-vercel-digest must be their SHA1
 *
 * Every answer checks `Authorization: Bearer <token>` first (403 forbidden otherwise) and the team scope
 * (`teamId` / `slug`). Errors are `{"error": {"code", "message"}}`. On demand: 429 with Retry-After and
 * X-RateLimit-* headers, and the daily-quota refusal (`api-deployments-free-per-day`, status 402 as seen in the
 * field, "try again in 24 hours").
 *
 * Deployments are served for real over HTTPS by a second server ("the edge", self-signed for 127.0.0.1): a
 * deployment's `url` is `127.0.0.1:<edgePort>/_dpl/<id>`, so `https://<url>` — what a target makes of Vercel's
 * host-name `url` — reaches it, and `{{target.url}}/health` in a check is `https://127.0.0.1:<port>/_dpl/<id>/health`.
 * Checks need the stand-in's certificate (`caFile`). A request to the edge with `Host: <domain>` is served by the
 * deployment that domain is an alias of, which is how a test sees which deployment production traffic reaches.
 *
 * Every request is recorded (method, raw path, query, headers, parsed body, time, status). The Authorization header
 * is checked against the token and then recorded only as a verdict (`auth`), so records can be searched for the
 * token anywhere else it must not be.
 */

export type ReadyState = 'QUEUED' | 'BUILDING' | 'READY' | 'ERROR' | 'CANCELED';

export interface StandinRequest {
  seq: number;
  at: number;
  method: string;
  /** The request target as sent, query string included. */
  rawPath: string;
  path: string;
  query: Record<string, string>;
  /** Every header but Authorization, as sent. */
  headers: Record<string, string>;
  auth: 'valid' | 'invalid' | 'missing' | 'not-bearer';
  body: unknown;
  rawBody: string;
  status?: number;
  /** The rate-limit headers of a 429 the stand-in sent. */
  responseHeaders?: Record<string, string>;
}

export interface StandinDeployment {
  id: string;
  name: string;
  projectId: string;
  url: string;
  target: 'production' | null;
  readyState: ReadyState;
  meta: Record<string, string>;
  gitSource?: unknown;
  files?: { file: string; sha?: string; size?: number }[];
  fromDeployment?: string;
  autoAssignCustomDomains?: boolean;
  createdAt: number;
  buildingAt?: number;
  readyAt?: number;
  endedAt?: number;
  errorCode?: string;
  errorMessage?: string;
  /** Has been the production deployment at some point (instant rollback needs that). */
  servedProduction: boolean;
  timers: NodeJS.Timeout[];
}

export interface StandinProject {
  id: string;
  name: string;
  accountId: string;
  domains: string[];
  production: string | null;
  lastAliasRequest: {
    type: 'promote' | 'rollback';
    jobStatus: 'pending' | 'in-progress' | 'succeeded' | 'failed' | 'skipped';
    requestedAt: number;
    toDeploymentId: string;
    fromDeploymentId: string | null;
  } | null;
}

export interface BuildPlan {
  /** READY (default), ERROR with a code and message, or never ending (a build that hangs). */
  outcome: 'READY' | 'ERROR' | 'HANG';
  errorCode?: string;
  errorMessage?: string;
}

interface FaultRule {
  match: (r: { method: string; path: string }) => boolean;
  times: number;
  /** Answer with this status (a 5xx), or never answer at all. */
  fault: { status: number } | 'stall';
}

interface RateLimitRule {
  match: (r: { method: string; path: string }) => boolean;
  times: number;
  retryAfterS?: number;
  resetInS: number;
  sendRetryAfter: boolean;
}

export interface StandinOptions {
  token: string;
  team?: { id: string; slug: string };
  queueMs?: number;
  buildMs?: number;
  promoteMs?: number;
  rollbackMs?: number;
}

const json = (
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
};
const apiError = (
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  extra: object = {},
) => json(res, status, { error: { code, message, ...extra } });

const rid = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

export class VercelStandin {
  readonly requests: StandinRequest[] = [];
  readonly projects = new Map<string, StandinProject>();
  readonly deployments = new Map<string, StandinDeployment>();
  /** alias (domain) → deployment id */
  readonly aliases = new Map<string, string>();
  readonly uploaded = new Map<string, Buffer>();
  apiUrl = '';
  edgePort = 0;
  caFile = '';
  queueMs: number;
  buildMs: number;
  promoteMs: number;
  rollbackMs: number;
  /** How long the answer to a create waits after the deployment exists (a slow API, or a kill racing the answer). */
  createAnswerDelayMs = 0;
  /** Builds between creation and their end right now, and the most there ever were. */
  inFlight = 0;
  peakInFlight = 0;
  private api!: http.Server;
  private edge!: https.Server;
  private tlsDir = '';
  private seq = 0;
  private rateRules: RateLimitRule[] = [];
  private faults: FaultRule[] = [];
  private stalled: http.ServerResponse[] = [];
  private daily?: { total: number; status: number; code: string };
  private createdCount = 0;
  private buildPlans: { match: (d: StandinDeployment) => boolean; plan: BuildPlan; times: number }[] = [];
  private promoteFailures: ((d: StandinDeployment) => boolean)[] = [];
  /** Status the edge answers for a deployment and path; 200 by default. */
  health: (d: StandinDeployment, path: string) => number = () => 200;

  constructor(readonly opts: StandinOptions) {
    this.queueMs = opts.queueMs ?? 5;
    this.buildMs = opts.buildMs ?? 30;
    this.promoteMs = opts.promoteMs ?? 10;
    this.rollbackMs = opts.rollbackMs ?? 0;
  }

  async start(): Promise<this> {
    const cert = selfSignedCert('vercel-standin.example.com');
    this.tlsDir = cert.dir;
    this.caFile = cert.certFile;
    this.edge = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) =>
      this.serveEdge(req, res),
    );
    this.edge.keepAliveTimeout = 1000;
    await new Promise<void>((r) => this.edge.listen(0, '127.0.0.1', r));
    this.edgePort = (this.edge.address() as AddressInfo).port;
    this.api = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        try {
          this.handle(req, res, Buffer.concat(chunks));
        } catch (e) {
          apiError(res, 500, 'internal_server_error', `stand-in: ${(e as Error).message}`);
        }
      });
    });
    this.api.keepAliveTimeout = 1000;
    await new Promise<void>((r) => this.api.listen(0, '127.0.0.1', r));
    this.apiUrl = `http://127.0.0.1:${(this.api.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const d of this.deployments.values()) d.timers.forEach(clearTimeout);
    for (const r of this.stalled) r.destroy();
    for (const s of [this.api, this.edge]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    fs.rmSync(this.tlsDir, { recursive: true, force: true });
  }

  // ---- test controls -------------------------------------------------------------------------------------------

  /** A project with a READY production deployment (unless `production: false`) serving its domains. */
  addProject(p: {
    name: string;
    domains?: string[];
    production?: boolean;
    release?: string;
  }): StandinProject {
    const project: StandinProject = {
      id: rid('prj'),
      name: p.name,
      accountId: this.opts.team?.id ?? 'user_standin',
      domains: p.domains ?? [],
      production: null,
      lastAliasRequest: null,
    };
    this.projects.set(project.id, project);
    if (p.production !== false) {
      const now = Date.now() - 60_000;
      const d = this.newDeployment(project, {
        target: 'production',
        meta: p.release ? { hdRelease: p.release } : {},
        createdAt: now,
      });
      d.readyState = 'READY';
      d.buildingAt = now;
      d.readyAt = now;
      d.endedAt = now;
      this.makeProduction(project, d);
    }
    return project;
  }

  project(nameOrId: string): StandinProject {
    const p = this.findProject(nameOrId);
    if (!p) throw new Error(`stand-in: no project ${nameOrId}`);
    return p;
  }

  deployment(id: string): StandinDeployment {
    const d = this.deployments.get(id);
    if (!d) throw new Error(`stand-in: no deployment ${id}`);
    return d;
  }

  deploymentsOf(project: string): StandinDeployment[] {
    const p = this.project(project);
    return [...this.deployments.values()].filter((d) => d.projectId === p.id);
  }

  /** The next `times` builds matching `match` end as `plan` says. */
  planBuilds(match: (d: StandinDeployment) => boolean, plan: BuildPlan, times = Infinity): void {
    this.buildPlans.push({ match, plan, times });
  }

  /** Promotions of matching deployments end with jobStatus "failed" and production unchanged. */
  failPromotions(match: (d: StandinDeployment) => boolean): void {
    this.promoteFailures.push(match);
  }

  /** The next `times` requests matching `match` get 429 (Retry-After: retryAfterS unless omitted). */
  rateLimit(r: {
    match?: (r: { method: string; path: string }) => boolean;
    times?: number;
    retryAfterS?: number;
    resetInS?: number;
    sendRetryAfter?: boolean;
  }): void {
    this.rateRules.push({
      match: r.match ?? (() => true),
      times: r.times ?? 1,
      retryAfterS: r.retryAfterS,
      resetInS: r.resetInS ?? r.retryAfterS ?? 1,
      sendRetryAfter: r.sendRetryAfter ?? true,
    });
  }

  /** The next `times` matching requests get `status` (e.g. 502), or no answer at all ('stall'). */
  fault(r: {
    match: (r: { method: string; path: string }) => boolean;
    times?: number;
    fault: FaultRule['fault'];
  }): void {
    this.faults.push({ match: r.match, times: r.times ?? 1, fault: r.fault });
  }

  /** Creations beyond `total` (counted from now) are refused with the daily-quota error. */
  dailyLimit(total: number, opts: { status?: number; code?: string } = {}): void {
    this.daily = { total, status: opts.status ?? 402, code: opts.code ?? 'api-deployments-free-per-day' };
    this.createdCount = 0;
  }

  /** Which deployment serves `domain` over HTTPS right now (asked through the edge with that Host header). */
  async servedBy(
    domain: string,
  ): Promise<{ status: number; deployment: string | null; release: string | null }> {
    const r = await this.edgeGet('/', domain);
    const b = r.body as { deployment?: string; release?: string | null };
    return { status: r.status, deployment: b?.deployment ?? null, release: b?.release ?? null };
  }

  edgeGet(path: string, host?: string): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: this.edgePort,
          path,
          method: 'GET',
          ca: fs.readFileSync(this.caFile),
          headers: host ? { host } : {},
          // The certificate is for 127.0.0.1, where the edge listens, whatever Host the request names.
          checkServerIdentity: (_name, c) => tls.checkServerIdentity('127.0.0.1', c),
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {
              /* text */
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  /** Requests to the API only (the edge is not recorded), optionally of one method and path pattern. */
  calls(method?: string, path?: RegExp): StandinRequest[] {
    return this.requests.filter((r) => (!method || r.method === method) && (!path || path.test(r.path)));
  }

  // ---- state machine -------------------------------------------------------------------------------------------

  private findProject(nameOrId: string): StandinProject | undefined {
    return this.projects.get(nameOrId) ?? [...this.projects.values()].find((p) => p.name === nameOrId);
  }

  private newDeployment(
    project: StandinProject,
    d: Partial<StandinDeployment> & { target: 'production' | null; meta: Record<string, string> },
  ): StandinDeployment {
    const id = rid('dpl');
    const dep: StandinDeployment = {
      id,
      name: project.name,
      projectId: project.id,
      url: `127.0.0.1:${this.edgePort}/_dpl/${id}`,
      readyState: 'QUEUED',
      createdAt: Date.now(),
      servedProduction: false,
      timers: [],
      ...d,
    };
    this.deployments.set(id, dep);
    return dep;
  }

  private makeProduction(project: StandinProject, d: StandinDeployment): void {
    project.production = d.id;
    d.servedProduction = true;
    for (const domain of project.domains) this.aliases.set(domain, d.id);
  }

  private startBuild(project: StandinProject, d: StandinDeployment): void {
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    const rule = this.buildPlans.find((r) => r.times > 0 && r.match(d));
    if (rule) rule.times--;
    const plan: BuildPlan = rule?.plan ?? { outcome: 'READY' };
    d.timers.push(
      setTimeout(() => {
        if (d.readyState !== 'QUEUED') return;
        d.readyState = 'BUILDING';
        d.buildingAt = Date.now();
        if (plan.outcome === 'HANG') return;
        d.timers.push(
          setTimeout(() => {
            if (d.readyState !== 'BUILDING') return;
            if (plan.outcome === 'ERROR') {
              d.readyState = 'ERROR';
              d.errorCode = plan.errorCode ?? 'BUILD_FAILED';
              d.errorMessage = plan.errorMessage ?? 'Command "npm run build" exited with 1';
            } else {
              d.readyState = 'READY';
              d.readyAt = Date.now();
              // A production build takes the domains at once unless it was created with autoAssignCustomDomains false.
              if (d.target === 'production' && d.autoAssignCustomDomains !== false)
                this.makeProduction(project, d);
            }
            this.endBuild(d);
          }, this.buildMs),
        );
      }, this.queueMs),
    );
  }

  private endBuild(d: StandinDeployment): void {
    if (d.endedAt !== undefined) return;
    d.endedAt = Date.now();
    this.inFlight--;
  }

  private deploymentJson(d: StandinDeployment) {
    const alias = [...this.aliases].filter(([, id]) => id === d.id).map(([a]) => a);
    const project = this.projects.get(d.projectId);
    const promoted = project?.production === d.id || d.servedProduction;
    return {
      id: d.id,
      name: d.name,
      url: d.url,
      projectId: d.projectId,
      ownerId: project?.accountId ?? 'user_standin',
      readyState: d.readyState,
      status: d.readyState,
      readySubstate:
        d.readyState === 'READY' && d.target === 'production'
          ? promoted
            ? 'PROMOTED'
            : 'STAGED'
          : undefined,
      target: d.target,
      meta: d.meta,
      alias,
      aliasAssigned: alias.length > 0,
      aliasError: null,
      autoAssignCustomDomains: d.autoAssignCustomDomains ?? true,
      createdAt: d.createdAt,
      bootedAt: d.createdAt,
      buildingAt: d.buildingAt ?? d.createdAt,
      ready: d.readyAt,
      buildSkipped: false,
      createdIn: 'iad1',
      creator: { uid: 'user_standin', username: 'standin' },
      build: { env: [] },
      env: [],
      gitRepo: null,
      gitSource: d.gitSource,
      errorCode: d.errorCode,
      errorMessage: d.errorMessage,
      inspectorUrl: `https://vercel.com/standin/${d.name}/${d.id}`,
      isInConcurrentBuildsQueue: false,
      isInSystemBuildsQueue: false,
      plan: 'pro',
      projectSettings: { framework: null },
      public: false,
      regions: ['iad1'],
      routes: null,
      type: 'LAMBDAS',
      version: 2,
    };
  }

  private projectJson(p: StandinProject) {
    const prod = p.production ? this.deployments.get(p.production) : undefined;
    const latest = [...this.deployments.values()]
      .filter((d) => d.projectId === p.id)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, 5);
    const summary = (d: StandinDeployment) => {
      const full = this.deploymentJson(d);
      return {
        id: d.id,
        url: d.url,
        alias: full.alias,
        aliasAssigned: full.aliasAssigned ? (d.readyAt ?? d.createdAt) : null,
        aliasError: null,
        readyState: d.readyState,
        readySubstate: full.readySubstate,
        target: d.target,
        meta: d.meta,
        createdAt: d.createdAt,
        createdIn: 'iad1',
        creator: { uid: 'user_standin', username: 'standin', email: 'standin@example.com' },
        deploymentHostname: d.url,
        name: d.name,
        plan: 'pro',
        private: true,
        type: 'LAMBDAS',
      };
    };
    return {
      id: p.id,
      name: p.name,
      accountId: p.accountId,
      targets: { production: prod ? summary(prod) : null },
      latestDeployments: latest.map(summary),
      lastAliasRequest: p.lastAliasRequest,
      alias: p.domains.map((domain) => ({
        domain,
        environment: 'production',
        target: 'PRODUCTION',
        deployment: null,
      })),
      autoAssignCustomDomains: true,
      defaultResourceConfig: { functionDefaultRegions: ['iad1'] },
      resourceConfig: { functionDefaultRegions: ['iad1'] },
      deploymentExpiration: {},
      directoryListing: false,
      nodeVersion: '22.x',
    };
  }

  // ---- HTTP ----------------------------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://standin');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (k !== 'authorization' && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const authz = req.headers.authorization;
    const auth: StandinRequest['auth'] =
      authz === undefined
        ? 'missing'
        : !authz.startsWith('Bearer ')
          ? 'not-bearer'
          : authz.slice(7) === this.opts.token
            ? 'valid'
            : 'invalid';
    const isUpload = url.pathname === '/v2/files';
    const rawBody = isUpload ? `<${raw.length} bytes>` : raw.toString('utf8');
    let body: unknown = undefined;
    if (!isUpload && rawBody) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = rawBody;
      }
    }
    const record: StandinRequest = {
      seq: ++this.seq,
      at: Date.now(),
      method: req.method ?? 'GET',
      rawPath: req.url ?? '/',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      auth,
      body,
      rawBody,
    };
    this.requests.push(record);
    const origEnd = res.end.bind(res);
    res.end = ((...a: Parameters<typeof res.end>) => {
      record.status = res.statusCode;
      return origEnd(...a);
    }) as typeof res.end;

    if (auth !== 'valid')
      return apiError(
        res,
        403,
        'forbidden',
        'Not authorized',
        auth === 'invalid' ? { invalidToken: true } : {},
      );
    const team = this.opts.team;
    const q = record.query;
    if (team && q.teamId !== team.id && q.slug !== team.slug)
      return apiError(res, 403, 'forbidden', 'You are not a member of this team or the team was not given');

    const fault = this.faults.find(
      (r) => r.times > 0 && r.match({ method: record.method, path: url.pathname }),
    );
    if (fault) {
      fault.times--;
      if (fault.fault === 'stall') {
        this.stalled.push(res);
        return;
      }
      return apiError(
        res,
        fault.fault.status,
        'internal_server_error',
        'An unexpected internal error occurred',
      );
    }
    const rule = this.rateRules.find(
      (r) => r.times > 0 && r.match({ method: record.method, path: url.pathname }),
    );
    if (rule) {
      rule.times--;
      const resetS = Math.ceil(Date.now() / 1000 + rule.resetInS);
      const h: Record<string, string> = {
        'x-ratelimit-limit': '100',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(resetS),
      };
      if (rule.sendRetryAfter && rule.retryAfterS !== undefined) h['retry-after'] = String(rule.retryAfterS);
      record.responseHeaders = h;
      return json(
        res,
        429,
        {
          error: {
            code: 'rate_limited',
            message: `The rate limit of 100 exceeded for 'api-${url.pathname.split('/')[2] ?? 'x'}'. Try again in ${rule.retryAfterS ?? rule.resetInS} seconds`,
            limit: { remaining: 0, reset: resetS, resetMs: resetS * 1000, total: 100 },
          },
        },
        h,
      );
    }

    const seg = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const m = record.method;
    if (m === 'POST' && seg.join('/') === 'v13/deployments') return this.create(res, body);
    if (m === 'GET' && seg[0] === 'v13' && seg[1] === 'deployments' && seg.length === 3) {
      const d = this.deployments.get(seg[2]) ?? [...this.deployments.values()].find((x) => x.url === seg[2]);
      if (!d) return apiError(res, 404, 'not_found', `Deployment not found: ${seg[2]}`);
      return json(res, 200, this.deploymentJson(d));
    }
    if (m === 'PATCH' && seg[0] === 'v12' && seg[1] === 'deployments' && seg[3] === 'cancel') {
      const d = this.deployments.get(seg[2]);
      if (!d) return apiError(res, 404, 'not_found', `Deployment not found: ${seg[2]}`);
      if (d.readyState !== 'QUEUED' && d.readyState !== 'BUILDING')
        return apiError(
          res,
          400,
          'bad_request',
          `Deployment ${d.id} is ${d.readyState} and cannot be canceled`,
        );
      d.timers.forEach(clearTimeout);
      d.readyState = 'CANCELED';
      this.endBuild(d);
      return json(res, 200, this.deploymentJson(d));
    }
    if (m === 'GET' && seg[0] === 'v9' && seg[1] === 'projects' && seg.length === 3) {
      const p = this.findProject(seg[2]);
      if (!p) return apiError(res, 404, 'not_found', `Project not found: ${seg[2]}`);
      return json(res, 200, this.projectJson(p));
    }
    if (m === 'POST' && seg[0] === 'v10' && seg[1] === 'projects' && seg[3] === 'promote' && seg.length === 5)
      return this.switchTo(res, seg[2], seg[4], 'promote');
    if (m === 'POST' && seg[0] === 'v1' && seg[1] === 'projects' && seg[3] === 'rollback' && seg.length === 5)
      return this.switchTo(res, seg[2], seg[4], 'rollback');
    if (m === 'GET' && seg[0] === 'v2' && seg[1] === 'deployments' && seg[3] === 'aliases') {
      const d = this.deployments.get(seg[2]);
      if (!d) return apiError(res, 404, 'not_found', `Deployment not found: ${seg[2]}`);
      const list = [...this.aliases]
        .filter(([, id]) => id === d.id)
        .map(([alias]) => ({
          uid: `alias_${alias}`,
          alias,
          created: new Date(d.createdAt).toISOString(),
          redirect: null,
        }));
      return json(res, 200, { aliases: list });
    }
    if (m === 'POST' && seg.join('/') === 'v2/files') {
      const digest = req.headers['x-vercel-digest'];
      const sha = createHash('sha1').update(raw).digest('hex');
      if (typeof digest !== 'string' || digest !== sha)
        return apiError(
          res,
          400,
          'invalid_digest',
          `x-vercel-digest ${String(digest)} does not match the content (${sha})`,
        );
      if (req.headers['content-length'] !== String(raw.length))
        return apiError(res, 400, 'bad_request', 'Content-Length does not match the body');
      this.uploaded.set(sha, raw);
      return json(res, 200, {});
    }
    return apiError(res, 404, 'not_found', `The stand-in does not serve ${m} ${url.pathname}`);
  }

  private create(res: http.ServerResponse, body: unknown): void {
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.name !== 'string' || !b.name)
      return apiError(res, 400, 'bad_request', 'Invalid request: missing required property `name`');
    const project = this.findProject(typeof b.project === 'string' ? b.project : b.name);
    if (!project) return apiError(res, 404, 'not_found', `Project not found: ${String(b.project ?? b.name)}`);
    const sources = ['gitSource', 'files', 'deploymentId'].filter((k) => b[k] !== undefined);
    if (sources.length !== 1)
      return apiError(
        res,
        400,
        'bad_request',
        `Invalid request: expected exactly one of gitSource, files, deploymentId; got ${sources.join(', ') || 'none'}`,
      );
    if (Array.isArray(b.files)) {
      const missing = (b.files as { sha?: string }[])
        .map((f) => f.sha ?? '')
        .filter((sha) => !this.uploaded.has(sha));
      if (missing.length) return apiError(res, 400, 'missing_files', 'Missing files', { missing });
    }
    let from: StandinDeployment | undefined;
    if (typeof b.deploymentId === 'string') {
      from = this.deployments.get(b.deploymentId);
      if (!from || from.projectId !== project.id)
        return apiError(res, 404, 'not_found', `Deployment not found: ${b.deploymentId}`);
    }
    if (this.daily) {
      if (this.createdCount >= this.daily.total)
        return apiError(
          res,
          this.daily.status,
          this.daily.code,
          `Resource is limited - try again in 24 hours (more than ${this.daily.total}, code: "${this.daily.code}").`,
          { limit: { total: this.daily.total, remaining: 0, reset: Date.now() + 86_400_000 } },
        );
      this.createdCount++;
    }
    const d = this.newDeployment(project, {
      target: b.target === 'production' ? 'production' : null,
      meta: (b.meta ?? {}) as Record<string, string>,
      gitSource: b.gitSource ?? from?.gitSource,
      files: (b.files as StandinDeployment['files']) ?? from?.files,
      fromDeployment: from?.id,
      autoAssignCustomDomains:
        typeof b.autoAssignCustomDomains === 'boolean' ? b.autoAssignCustomDomains : undefined,
    });
    this.startBuild(project, d);
    if (this.createAnswerDelayMs <= 0) return json(res, 200, this.deploymentJson(d));
    setTimeout(() => json(res, 200, this.deploymentJson(d)), this.createAnswerDelayMs);
  }

  private switchTo(
    res: http.ServerResponse,
    projectId: string,
    depId: string,
    type: 'promote' | 'rollback',
  ): void {
    const p = this.findProject(projectId);
    if (!p) return apiError(res, 404, 'not_found', `Project not found: ${projectId}`);
    const d = this.deployments.get(depId);
    if (!d || d.projectId !== p.id) return apiError(res, 404, 'not_found', `Deployment not found: ${depId}`);
    if (d.readyState !== 'READY')
      return apiError(res, 400, 'bad_request', `Deployment ${d.id} is ${d.readyState}, not READY`);
    if (d.target !== 'production')
      return apiError(
        res,
        400,
        'bad_request',
        `Deployment ${d.id} is not a production deployment and cannot be directly promoted`,
      );
    if (type === 'rollback' && !d.servedProduction)
      return apiError(
        res,
        409,
        'conflict',
        `Deployment ${d.id} has never served production traffic; promote it instead`,
      );
    const fails = type === 'promote' && this.promoteFailures.some((f) => f(d));
    p.lastAliasRequest = {
      type,
      jobStatus: 'in-progress',
      requestedAt: Date.now(),
      toDeploymentId: d.id,
      fromDeploymentId: p.production,
    };
    const job = p.lastAliasRequest;
    const done = () => {
      if (p.lastAliasRequest !== job) return;
      if (fails) job.jobStatus = 'failed';
      else {
        this.makeProduction(p, d);
        job.jobStatus = 'succeeded';
      }
    };
    const ms = type === 'promote' ? this.promoteMs : this.rollbackMs;
    if (ms <= 0) done();
    else d.timers.push(setTimeout(done, ms));
    return json(res, 201, {});
  }

  private serveEdge(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://edge');
    let d: StandinDeployment | undefined;
    let path = url.pathname;
    const m = /^\/_dpl\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (m) {
      d = this.deployments.get(m[1]);
      path = m[2] ?? '/';
    } else {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      const id = this.aliases.get(host);
      d = id ? this.deployments.get(id) : undefined;
    }
    if (!d || d.readyState !== 'READY') {
      res.writeHead(404, { 'content-type': 'text/plain', 'x-vercel-error': 'DEPLOYMENT_NOT_FOUND' });
      res.end('The deployment could not be found on Vercel.\n\nDEPLOYMENT_NOT_FOUND\n');
      return;
    }
    const status = this.health(d, path);
    const body = JSON.stringify({
      deployment: d.id,
      release: d.meta.hdRelease ?? null,
      project: d.name,
      path,
      ok: status < 400,
    });
    res.writeHead(status, { 'content-type': 'application/json', 'x-release': d.meta.hdRelease ?? '' });
    res.end(body);
  }
}

export async function startVercelStandin(opts: StandinOptions): Promise<VercelStandin> {
  return new VercelStandin(opts).start();
}

// ---- a run context and a health gate for tests that drive Vercel targets through the Target interface -----------

export const TEST_COMMIT = '0123456789abcdef0123456789abcdef01234567';

export function testRun(opts: {
  dir: string;
  env: NodeJS.ProcessEnv;
  runToken?: string;
  commit?: string;
  ref?: string;
  signal?: AbortSignal;
}): { ctx: RunContext; events: DeployEvent[] } {
  const config: Config = {
    file: `${opts.dir}/deploy.yml`,
    dir: opts.dir,
    project: 'sites',
    source: opts.dir,
    hosts: {},
    targets: {},
    stages: [],
    verify: { health: [], onFailure: 'none' },
    lock: { staleAfterMs: 600_000, takeoverStale: false, waitMs: 0 },
    parallel: 10,
    checkpointAbove: 50,
  };
  const ctx = makeContext(config, {
    runToken: opts.runToken ?? `run-${randomBytes(4).toString('hex')}`,
    env: opts.env,
    redactor: new Redactor(),
    commit: opts.commit ?? TEST_COMMIT,
    run: { id: '4242', url: 'https://github.com/example/sites/actions/runs/4242', actor: 'tester' },
    signal: opts.signal,
  });
  ctx.release = { ...ctx.release, ref: opts.ref ?? 'refs/heads/main' };
  const events: DeployEvent[] = [];
  ctx.emit = (e) => void events.push(e);
  return { ctx, events };
}

export function vercelTarget(
  name: string,
  apiUrl: string,
  over: Partial<VercelTargetConfig> = {},
): VercelTargetConfig {
  return {
    kind: 'vercel',
    name,
    labels: {},
    vars: {},
    project: name,
    tokenEnv: 'VERCEL_TOKEN',
    apiUrl,
    promote: 'production',
    source: { type: 'git', provider: 'github', repo: `example/${name}` },
    domains: [],
    buildTimeoutMs: 30_000,
    pollIntervalMs: 10,
    state: { kind: 'dir', path: '/tmp/unused' },
    limits: { plan: 'pro', concurrentBuilds: 12, deploymentsPerDay: 6000 },
    ...over,
  };
}

/** An HTTP check of `{{target.url}}/health` that also wants this run's release in the JSON answer. */
export function releaseCheck(caFile: string): HealthCheck {
  return {
    name: 'health',
    kind: 'http',
    target: '{{target.url}}/health',
    method: 'GET',
    headers: {},
    caFile,
    expect: { status: [200], release: { in: 'json', key: 'release' } },
    timeoutMs: 3000,
    intervalMs: 20,
    retries: 0,
    successes: 1,
    startPeriodMs: 0,
  };
}

/**
 * checkBeforeActivate as the pipeline gives it: renders the check against the subject's vars and probes it over
 * real HTTPS; throws HealthFailed when it fails. `seen` collects each subject, for assertions.
 */
export function healthGate(check: HealthCheck, seen: HealthSubject[] = []) {
  return async (subject: HealthSubject): Promise<HealthReport[]> => {
    seen.push(subject);
    const t0 = Date.now();
    const url = renderTemplate(check.target, subject.vars, `health check "${check.name}"`);
    const r = await probeHttp(check, url, subject.release, {
      timeoutMs: check.timeoutMs,
      signal: new AbortController().signal,
      redact: (t) => t,
    });
    const report: HealthReport = {
      check: check.name,
      ok: r.ok,
      attempts: 1,
      durationMs: Date.now() - t0,
      lastError: r.ok ? undefined : r.detail,
    };
    if (!r.ok) throw new HealthFailed(subject.name, [report]);
    return [report];
  };
}
