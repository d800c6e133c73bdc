import * as http from 'node:http';
import * as tls from 'node:tls';
import { DeployError } from '../errors';

export interface TlsTrust {
  ca?: string; // PEM of the CA that signed the server's certificate (e.g. /etc/pve/pve-root-ca.pem)
  fingerprint?: string; // SHA-256 of the server certificate, "AB:CD:..." as Proxmox shows it
}

export interface HttpsResult {
  status: number;
  statusText: string;
  body: string;
}

const norm = (fp: string) => fp.replace(/[^0-9a-f]/gi, '').toUpperCase();

const cancelled = (method: string, url: URL) =>
  new DeployError('cancelled', `${method} ${url.host}${url.pathname} cancelled: the run was cancelled`);

/**
 * An HTTPS request that trusts only what the config names: a pinned CA, or a pinned certificate fingerprint
 * checked after the handshake and BEFORE any byte of the request (and its token) is sent.
 * An aborted `signal` destroys the socket at once, in the handshake or mid-answer, and rejects as `cancelled`.
 */
export async function pinnedRequest(
  url: URL,
  trust: TlsTrust,
  opts: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    timeoutMs: number;
    signal?: AbortSignal;
  },
): Promise<HttpsResult> {
  const { signal } = opts;
  if (signal?.aborted) throw cancelled(opts.method, url);
  const port = Number(url.port || 443);
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({
      host: url.hostname,
      port,
      servername: /^[\d.]+$/.test(url.hostname) ? undefined : url.hostname,
      ca: trust.ca,
      rejectUnauthorized: trust.fingerprint === undefined,
    });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      s.destroy();
      reject(cancelled(opts.method, url));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => s.destroy(new Error(`TLS handshake with ${url.host} timed out after ${opts.timeoutMs}ms`)),
      opts.timeoutMs,
    );
    s.once('secureConnect', () => {
      done();
      if (trust.fingerprint !== undefined) {
        const got = s.getPeerCertificate().fingerprint256 ?? '';
        if (norm(got) !== norm(trust.fingerprint)) {
          s.destroy();
          return reject(
            new DeployError(
              'host-key',
              `TLS certificate of ${url.host} has fingerprint ${got}, expected ${trust.fingerprint}; refusing to send the API token`,
            ),
          );
        }
      }
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      done();
      const cls = /certificate|self.signed|CERT|verify/i.test(err.message + (err.code ?? ''))
        ? 'host-key'
        : /timed out/.test(err.message)
          ? 'timeout'
          : 'unreachable';
      reject(new DeployError(cls, `cannot reach ${url.host}: ${err.code ?? err.message}`));
    });
  });
  return new Promise((resolve, reject) => {
    const onAbort = () => req.destroy(cancelled(opts.method, url));
    // http.request over the already verified TLS socket: with createConnection and no agent, Node uses it as is
    // (https.request would open a fresh, unpinned connection through its own agent).
    const req = http.request(
      {
        method: opts.method,
        host: url.hostname,
        port,
        path: url.pathname + url.search,
        headers: opts.body
          ? { ...opts.headers, 'content-length': Buffer.byteLength(opts.body).toString() }
          : opts.headers,
        createConnection: () => socket,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('error', (err) => req.destroy(err));
        res.on('end', () => {
          signal?.removeEventListener('abort', onAbort);
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', body });
        });
      },
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    req.setTimeout(opts.timeoutMs, () =>
      req.destroy(
        new DeployError(
          'timeout',
          `${opts.method} ${url.host}${url.pathname} timed out after ${opts.timeoutMs}ms`,
        ),
      ),
    );
    req.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(
        err instanceof DeployError
          ? err
          : new DeployError('unreachable', `${opts.method} ${url.host}${url.pathname}: ${err.message}`),
      );
    });
    req.end(opts.body);
  });
}
