import type { HealthCheck } from '../config/types';

export interface ProbeResult {
  ok: boolean;
  detail: string; // what came back, for the report when the check fails
}

function jsonPath(value: unknown, p: string): unknown {
  return p.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value);
}

const excerpt = (s: string) => (s.length > 200 ? s.slice(0, 200) + '…' : s).replace(/\s+/g, ' ');

export async function probeHttp(check: HealthCheck, url: string, signal?: AbortSignal): Promise<ProbeResult> {
  let res: Response;
  const timeout = AbortSignal.timeout(check.timeoutMs);
  try {
    res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'manual' });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${check.timeoutMs}ms` : (e.cause?.code ?? e.message);
    return { ok: false, detail: `GET ${url}: ${why}` };
  }
  const body = await res.text().catch(() => '');
  const statuses = check.expect.status ?? [200];
  if (!statuses.includes(res.status)) {
    return { ok: false, detail: `GET ${url}: expected status ${statuses.join('|')}, got ${res.status}: ${excerpt(body)}` };
  }
  if (check.expect.body !== undefined && !body.includes(check.expect.body)) {
    return { ok: false, detail: `GET ${url}: body does not contain ${JSON.stringify(check.expect.body)}: ${excerpt(body)}` };
  }
  if (check.expect.json) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return { ok: false, detail: `GET ${url}: expected JSON, got: ${excerpt(body)}` };
    }
    for (const [p, want] of Object.entries(check.expect.json)) {
      const got = jsonPath(parsed, p);
      if (got !== want) {
        return { ok: false, detail: `GET ${url}: ${p} expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}` };
      }
    }
  }
  return { ok: true, detail: `${res.status}` };
}
