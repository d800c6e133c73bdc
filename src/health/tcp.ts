import * as net from 'node:net';
import type { ProbeResult } from './http';

/** Connects to host:port and closes; a refused or silent port fails with what happened. */
export function probeTcp(target: string, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(target.slice(i + 1));
  return new Promise((resolve) => {
    const started = performance.now();
    const s = net.connect({ host, port });
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      s.destroy();
      resolve(r);
    };
    const abort = () => done({ ok: false, detail: `tcp ${target}: cancelled` });
    const timer = setTimeout(
      () => done({ ok: false, detail: `tcp ${target}: no connection within ${timeoutMs}ms` }),
      timeoutMs,
    );
    signal.addEventListener('abort', abort, { once: true });
    s.once('connect', () =>
      done({ ok: true, detail: `connected in ${Math.round(performance.now() - started)}ms` }),
    );
    s.once('error', (e: NodeJS.ErrnoException) =>
      done({ ok: false, detail: `tcp ${target}: ${e.code ?? e.message}` }),
    );
  });
}
