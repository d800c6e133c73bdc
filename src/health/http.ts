import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { HealthCheck } from '../config/types';
import { stripUserinfo } from '../util/url';

export interface ProbeResult {
  ok: boolean;
  detail: string; // what was expected and what came back, for the report when the check fails
}

/** What one probe needs besides the check: a hard time budget, cancellation, and the run's redactor. */
export interface ProbeOptions {
  timeoutMs: number; // this attempt's budget: min(check timeout, time left before the deadline)
  signal: AbortSignal; // the run's cancellation; each probe applies timeoutMs itself, to tell the two apart
  redact: (text: string) => string;
}

const EXCERPT = 200;
const MAX_BODY = 256 * 1024;

/**
 * A short, one-line excerpt of a body or an output for an error message. Redaction comes first: cutting first
 * would leave the prefix of a secret that straddles the cut, which the redactor no longer recognises.
 */
export function excerpt(s: string, redact: (text: string) => string): string {
  const flat = redact(s).replace(/\s+/g, ' ').trim();
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
  truncated: boolean; // the body was longer than MAX_BODY and only its start was read
  ms: number;
}

const caCache = new Map<string, string>();

const probeError = (code: string, message: string) => Object.assign(new Error(message), { code });

/**
 * One request with a hard limit on the whole exchange (connect, headers and body). Node's `timeout` option only
 * fires on an idle socket, so a server trickling a byte every 100 ms would never trip it; an AbortSignal timer
 * does. Past MAX_BODY the request is destroyed rather than drained, so an endless body cannot hold the probe.
 */
function request(check: HealthCheck, url: URL, o: ProbeOptions): Promise<HttpAnswer> {
  const mod = url.protocol === 'https:' ? https : http;
  let ca: string | undefined;
  if (check.caFile) {
    ca = caCache.get(check.caFile) ?? fs.readFileSync(check.caFile, 'utf8');
    caCache.set(check.caFile, ca);
  }
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let settled = false;
    // A plain timer, not AbortSignal.timeout/any: a combined signal nobody else references can be collected
    // before it fires (seen here as a probe that never ended under load), and a timer cannot.
    const timer = setTimeout(
      () => fail(probeError('TIMEOUT', `no complete answer within ${o.timeoutMs}ms`)),
      o.timeoutMs,
    );
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      fn();
    };
    const fail = (err: Error) => settle(() => (req.destroy(), reject(err)));
    const onAbort = () => fail(probeError('CANCELLED', 'cancelled'));
    const req = mod.request(url, { method: check.method, headers: check.headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const answer = (truncated: boolean) =>
        settle(() => {
          if (truncated) req.destroy();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            truncated,
            ms: performance.now() - started,
          });
        });
      res.on('data', (d: Buffer) => {
        if (settled) return;
        if (size + d.length > MAX_BODY) {
          chunks.push(d.subarray(0, MAX_BODY - size));
          size = MAX_BODY;
          return answer(true);
        }
        chunks.push(d);
        size += d.length;
      });
      res.on('end', () => answer(false));
      res.on('error', fail);
      res.on('close', () => {
        if (!res.complete) fail(probeError('ECONNRESET', 'connection closed before the body was complete'));
      });
    });
    req.on('error', fail);
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
    req.end();
  });
}

/** One HTTP(S) probe: status, body text/regex, JSON fields, response time and the release marker. */
export async function probeHttp(
  check: HealthCheck,
  target: string,
  /** The release the marker must name; undefined: not known (an old version), so the marker is not checked. */
  release: string | undefined,
  o: ProbeOptions,
): Promise<ProbeResult> {
  // A URL may carry user:password@; the report only ever names the URL without it.
  const what = `${check.method} ${stripUserinfo(target)}`;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return { ok: false, detail: `${what}: not a valid URL` };
  }
  let a: HttpAnswer;
  try {
    a = await request(check, url, o);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'TIMEOUT' || e.code === 'CANCELLED' || !e.code ? e.message : e.code;
    return { ok: false, detail: `${what}: ${stripUserinfo(why)}` };
  }
  const body = (text: string) =>
    excerpt(text, o.redact) + (a.truncated ? ` (only the first ${MAX_BODY} bytes were read)` : '');
  const x = check.expect;
  const statuses = x.status ?? [200];
  if (!statuses.includes(a.status))
    return {
      ok: false,
      detail: `${what}: expected status ${statuses.join('|')}, got ${a.status}: ${body(a.body)}`,
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
      detail: `${what}: body does not contain ${JSON.stringify(x.body)}: ${body(a.body)}`,
    };
  if (x.bodyRegex !== undefined && !new RegExp(x.bodyRegex).test(a.body))
    return { ok: false, detail: `${what}: body does not match /${x.bodyRegex}/: ${body(a.body)}` };
  let parsed: unknown;
  if (x.json || x.release?.in === 'json') {
    try {
      parsed = JSON.parse(a.body);
    } catch {
      return { ok: false, detail: `${what}: expected JSON, got: ${body(a.body)}` };
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
  if (x.release && release !== undefined) {
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
