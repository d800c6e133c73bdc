import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { githubTagPublisher } from '../../src/action/tag-publisher';
import { DeployError } from '../../src/errors';

/**
 * The action's release-tag publisher against a local stand-in of GitHub's git database API, answering as
 * docs.github.com documents: POST /repos/{o}/{r}/git/tags makes a tag object, POST .../git/refs a ref (422
 * "Reference already exists" when taken), GET .../git/ref/tags/{tag} reads a ref (404 when absent) and
 * GET .../git/tags/{sha} a tag object. Every request is recorded with its Authorization header.
 */
interface Call {
  method: string;
  path: string;
  body: Record<string, unknown>;
  auth?: string;
}

const servers = new Set<http.Server>();
afterEach(() => {
  for (const s of servers) {
    s.close();
    s.closeAllConnections();
  }
  servers.clear();
});
const savedUrl = process.env.GITHUB_API_URL;
afterEach(() => {
  if (savedUrl === undefined) delete process.env.GITHUB_API_URL;
  else process.env.GITHUB_API_URL = savedUrl;
});

async function standIn(fault?: (c: Call) => { status: number; body: unknown } | undefined) {
  const calls: Call[] = [];
  const refs = new Map<string, { type: 'tag' | 'commit'; sha: string }>();
  const tags = new Map<string, { tag: string; message: string; object: { type: string; sha: string } }>();
  const answer = (c: Call): { status: number; body: unknown } => {
    let m: RegExpExecArray | null;
    if (c.method === 'POST' && c.path === '/repos/jjeco/homelab/git/tags') {
      const sha = createHash('sha1').update(JSON.stringify(c.body)).digest('hex');
      const tag = {
        tag: String(c.body.tag),
        message: String(c.body.message),
        object: { type: String(c.body.type), sha: String(c.body.object) },
      };
      tags.set(sha, tag);
      return { status: 201, body: { sha, ...tag } };
    }
    if (c.method === 'POST' && c.path === '/repos/jjeco/homelab/git/refs') {
      const ref = String(c.body.ref);
      if (refs.has(ref)) return { status: 422, body: { message: 'Reference already exists' } };
      const sha = String(c.body.sha);
      const object = { type: tags.has(sha) ? ('tag' as const) : ('commit' as const), sha };
      refs.set(ref, object);
      return { status: 201, body: { ref, object } };
    }
    if (c.method === 'GET' && (m = /^\/repos\/jjeco\/homelab\/git\/ref\/(.+)$/.exec(c.path))) {
      const ref = `refs/${decodeURIComponent(m[1])}`;
      const object = refs.get(ref);
      return object
        ? { status: 200, body: { ref, object } }
        : { status: 404, body: { message: 'Not Found' } };
    }
    if (c.method === 'GET' && (m = /^\/repos\/jjeco\/homelab\/git\/tags\/([0-9a-f]+)$/.exec(c.path))) {
      const tag = tags.get(m[1]);
      return tag
        ? { status: 200, body: { sha: m[1], ...tag } }
        : { status: 404, body: { message: 'Not Found' } };
    }
    return { status: 404, body: { message: 'Not Found' } };
  };
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      const call: Call = {
        method: req.method ?? '',
        path: req.url ?? '',
        body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
        auth: req.headers.authorization,
      };
      calls.push(call);
      const a = fault?.(call) ?? answer(call);
      res.writeHead(a.status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.add(server);
  process.env.GITHUB_API_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { calls, refs };
}

const SHA = 'c0ffee'.padEnd(40, '1');
const OTHER = 'b'.repeat(40);
const fast = { unitMs: 1, writeIntervalMs: 0, attempts: 2 };

describe('the action publishes release tags through the GitHub API', () => {
  it('lookup, publish, lookup again, re-run: what the engine needs, with the job token on every call', async () => {
    const gh = await standIn();
    const warnings: string[] = [];
    const pub = githubTagPublisher({
      token: 'ghs_tagtoken',
      repository: 'jjeco/homelab',
      warn: (m) => warnings.push(m),
      ...fast,
    });
    expect(pub.via).toBe('github-api');
    expect(await pub.lookup?.('v1.2.0')).toBeUndefined();
    expect(await pub.publish('v1.2.0', SHA, 'release v1.2.0')).toEqual({
      created: true,
      existing: undefined,
    });
    expect(gh.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET /repos/jjeco/homelab/git/ref/tags%2Fv1.2.0',
      'POST /repos/jjeco/homelab/git/tags',
      'POST /repos/jjeco/homelab/git/refs',
    ]);
    expect(gh.calls[1].body).toEqual({
      tag: 'v1.2.0',
      message: 'release v1.2.0',
      object: SHA,
      type: 'commit',
    });
    expect(gh.refs.get('refs/tags/v1.2.0')?.type).toBe('tag');
    // The ref names the tag object; lookup peels it to the commit.
    expect(await pub.lookup?.('v1.2.0')).toBe(SHA);
    expect(await pub.publish('v1.2.0', SHA, 'release v1.2.0')).toEqual({ created: false, existing: SHA });
    expect(gh.calls.every((c) => c.auth === 'token ghs_tagtoken' || c.auth === 'Bearer ghs_tagtoken')).toBe(
      true,
    );
    expect(warnings).toEqual([]);
  });

  it('a tag on another commit is a precondition error and stays where it is', async () => {
    const gh = await standIn();
    const pub = githubTagPublisher({ token: 'ghs_x', repository: 'jjeco/homelab', ...fast });
    await pub.publish('v2.0.0', SHA, 'm');
    const before = gh.refs.get('refs/tags/v2.0.0');
    const err = await pub.publish('v2.0.0', OTHER, 'm').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeployError);
    expect(err).toMatchObject({
      errorClass: 'precondition',
      message: `release tag v2.0.0 already exists on commit ${SHA}, not ${OTHER}; it is left as it is`,
    });
    expect(gh.refs.get('refs/tags/v2.0.0')).toEqual(before);
  });

  it('a token without contents: write is an auth error that says what is missing', async () => {
    await standIn((c) =>
      c.method === 'POST'
        ? { status: 403, body: { message: 'Resource not accessible by integration' } }
        : undefined,
    );
    const pub = githubTagPublisher({ token: 'ghs_x', repository: 'jjeco/homelab', ...fast });
    await expect(pub.publish('v3.0.0', SHA, 'm')).rejects.toMatchObject({
      errorClass: 'auth',
      message:
        "release tag v3.0.0: Resource not accessible by integration (HTTP 403): the job's token needs contents: write to create release tags",
    });
  });

  it('GitHub down at lookup: a warning, no verdict (the tag is checked again when it is made), no throw', async () => {
    const gh = await standIn(() => ({ status: 502, body: { message: 'bad gateway' } }));
    const warnings: string[] = [];
    const pub = githubTagPublisher({
      token: 'ghs_x',
      repository: 'jjeco/homelab',
      warn: (m) => warnings.push(m),
      ...fast,
    });
    expect(await pub.lookup?.('v4.0.0')).toBeUndefined();
    expect(gh.calls.length).toBe(2); // tried again once (attempts: 2)
    expect(warnings).toEqual([
      'release tag v4.0.0: could not look it up on GitHub before deploying (HTTP 502: bad gateway); it is checked again when it is created',
    ]);
  });

  it('refuses a repository that is not owner/repo', () => {
    expect(() => githubTagPublisher({ token: 't', repository: 'homelab' })).toThrow(
      'GITHUB_REPOSITORY "homelab" is not owner/repo',
    );
  });
});
