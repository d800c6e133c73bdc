import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { HealthCheck } from '../config/types';

export interface ProbeResult {
  ok: boolean;
  detail: string; // what was expected and what came back, for the report when the check fails
}

const EXCERPT = 200;
const MAX_BODY = 256 * 1024;

export function excerpt(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT ? `${flat.slice(0, EXCERPT)}… (${s.length} bytes)` : flat;
}

function jsonPath(value: unknown, p: string): unknown {
  return p.split('.').reduce<unknown>((v, k) => {
    if (v === null || typeof v !== 'object') return undefined;
    return Array.isArray(v) && /^\d+$/.test(k) ? v[Number(k)] : (v as Record<string, unknown>)[k];
  }, value);
}

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

const caCache = new Map<string, string>();

function request(check: HealthCheck, url: URL, signal: AbortSignal): Promise<HttpAnswer> {
  const mod = url.protocol === 'https:' ? https : http;
  let ca: string | undefined;
  if (check.caFile) {
    ca = caCache.get(check.caFile) ?? fs.readFileSync(check.caFile, 'utf8');
    caCache.set(check.caFile, ca);
  }
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      { method: check.method, headers: check.headers, ca, signal, timeout: check.timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (body.length < MAX_BODY) body += d;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            ms: performance.now() - started,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${check.timeoutMs}ms`), { code: 'TIMEOUT' })),
    );
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP(S) probe: status, body text/regex, JSON fields, response time and the release marker. */
export async function probeHttp(
  check: HealthCheck,
  target: string,
  release: string,
  signal: AbortSignal,
): Promise<ProbeResult> {
  const what = `${check.method} ${target}`;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return { ok: false, detail: `${what}: not a valid URL` };
  }
  let a: HttpAnswer;
  try {
    a = await request(check, url, signal);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, detail: `${what}: ${e.code === 'TIMEOUT' ? e.message : (e.code ?? e.message)}` };
  }
  const x = check.expect;
  const statuses = x.status ?? [200];
  if (!statuses.includes(a.status))
    return {
      ok: false,
      detail: `${what}: expected status ${statuses.join('|')}, got ${a.status}: ${excerpt(a.body)}`,
    };
  if (x.maxResponseTimeMs !== undefined && a.ms > x.maxResponseTimeMs) {
    return {
      ok: false,
      detail: `${what}: answered in ${Math.round(a.ms)}ms, limit ${x.maxResponseTimeMs}ms`,
    };
  }
  if (x.body !== undefined && !a.body.includes(x.body))
    return {
      ok: false,
      detail: `${what}: body does not contain ${JSON.stringify(x.body)}: ${excerpt(a.body)}`,
    };
  if (x.bodyRegex !== undefined && !new RegExp(x.bodyRegex).test(a.body))
    return { ok: false, detail: `${what}: body does not match /${x.bodyRegex}/: ${excerpt(a.body)}` };
  let parsed: unknown;
  if (x.json || x.release?.in === 'json') {
    try {
      parsed = JSON.parse(a.body);
    } catch {
      return { ok: false, detail: `${what}: expected JSON, got: ${excerpt(a.body)}` };
    }
    for (const [p, want] of Object.entries(x.json ?? {})) {
      const got = jsonPath(parsed, p);
      if (got !== want)
        return {
          ok: false,
          detail: `${what}: ${p} expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`,
        };
    }
  }
  if (x.release) {
    // A healthy OLD container must not pass for the new release.
    const got =
      x.release.in === 'header' ? a.headers[x.release.key.toLowerCase()] : jsonPath(parsed, x.release.key);
    const value = Array.isArray(got) ? got[0] : got;
    if (value !== release) {
      return {
        ok: false,
        detail: `${what}: release marker ${x.release.in}:${x.release.key} is ${JSON.stringify(value ?? null)}, expected ${JSON.stringify(release)} (an old release is answering)`,
      };
    }
  }
  return { ok: true, detail: `${a.status} in ${Math.round(a.ms)}ms` };
}
