import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for GitHub's REST API, as far as commit statuses go (POST /repos/{owner}/{repo}/statuses/{sha},
 * answered 201 with the status object), that can be down (500 for everything) or rate-limit each context's first
 * request (429 with Retry-After and exhausted X-RateLimit-* headers, as GitHub documents). It records every call.
 */
export type GithubMode = 'ok' | 'down' | 'rate-limited';

export interface StatusCall {
  path: string;
  context: string;
  state: string;
  answered: number;
  auth?: string;
}

export interface GithubStandIn {
  url: string;
  calls: StatusCall[];
  close(): Promise<void>;
}

export async function startGithubStandIn(mode: GithubMode): Promise<GithubStandIn> {
  const calls: StatusCall[] = [];
  const limited = new Set<string>();
  let id = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      let parsed: Record<string, unknown> = {};
      try {
        parsed = body ? (JSON.parse(body) as Record<string, unknown>) : {};
      } catch {
        /* recorded as it came */
      }
      const m = /^\/repos\/([^/]+)\/([^/]+)\/statuses\/([0-9a-f]{40})$/.exec(req.url ?? '');
      const context = String(parsed.context ?? 'default');
      const answer = (status: number, json: unknown, headers: Record<string, string> = {}) => {
        calls.push({
          path: req.url ?? '',
          context,
          state: String(parsed.state),
          answered: status,
          auth: req.headers.authorization,
        });
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(JSON.stringify(json));
      };
      if (req.method !== 'POST' || !m)
        return answer(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
      if (mode === 'down') return answer(500, { message: 'Server Error' });
      if (mode === 'rate-limited' && !limited.has(context)) {
        limited.add(context);
        return answer(
          429,
          {
            message: 'API rate limit exceeded for installation.',
            documentation_url: 'https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api',
          },
          {
            'retry-after': '1',
            'x-ratelimit-limit': '5000',
            'x-ratelimit-remaining': '0',
            'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 1),
          },
        );
      }
      const now = new Date().toISOString();
      answer(201, {
        url: `https://api.github.com/repos/${m[1]}/${m[2]}/statuses/${m[3]}`,
        id: ++id,
        state: parsed.state,
        description: parsed.description ?? null,
        target_url: parsed.target_url ?? null,
        context,
        created_at: now,
        updated_at: now,
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
