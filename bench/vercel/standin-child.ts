/**
 * The Vercel API stand-in the project's tests use (test/helpers/vercel-standin.ts), run as a child process of
 * the benchmark, so the CLI's requests are served outside the benchmark's own event loop and the stand-in's CPU
 * can be read apart from the CLI's. The stand-in is TypeScript; it is loaded through a small require hook that
 * transpiles it (and the few modules it imports) with the project's TypeScript compiler.
 *
 * usage: fork(standin-child.js, [ROOT, SETTINGS_JSON])  — answers bench/vercel/protocol.ts messages; exits
 * when told to close or when the benchmark goes away (its IPC channel closes).
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { StandinOptions, VercelStandin } from '../../test/helpers/vercel-standin';
import type {
  ProjectState,
  StandinReady,
  StandinReply,
  StandinRequestMessage,
  StandinSettings,
  StandinStats,
} from './protocol';

interface TranspileApi {
  transpileModule(
    text: string,
    o: { fileName: string; compilerOptions: Record<string, unknown> },
  ): { outputText: string };
  ModuleKind: { CommonJS: number };
  ScriptTarget: { ES2022: number };
}

type CompilingModule = NodeJS.Module & { _compile(code: string, file: string): void };

function loadStandin(root: string): { startVercelStandin(o: StandinOptions): Promise<VercelStandin> } {
  const load = createRequire(path.join(root, 'package.json'));
  const ts = load('typescript') as TranspileApi;
  const compilerOptions = {
    module: ts.ModuleKind.CommonJS,
    target: ts.ScriptTarget.ES2022,
    esModuleInterop: true,
  };
  require.extensions['.ts'] = (module, file) => {
    const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), { fileName: file, compilerOptions });
    (module as CompilingModule)._compile(out.outputText, file);
  };
  return load(path.join(root, 'test/helpers/vercel-standin.ts')) as ReturnType<typeof loadStandin>;
}

/** A request path with its ids and project names replaced, so equal calls count together. */
export function endpointKey(method: string, p: string, names: ReadonlySet<string>): string {
  const generic = p
    .split('/')
    .map((seg) => {
      const s = decodeURIComponent(seg);
      if (/^dpl_\w+$/.test(s)) return '{deployment}';
      if (/^prj_\w+$/.test(s)) return '{project}';
      if (names.has(s)) return '{name}';
      return seg;
    })
    .join('/');
  return `${method} ${generic}`;
}

function stateOf(s: VercelStandin, names: string[], since: number): StandinStats {
  const known = new Set(names);
  const byEndpoint: Record<string, number> = {};
  let badAuth = 0;
  let throttled = 0;
  let created = 0;
  for (const r of s.requests) {
    if (r.seq <= since) continue;
    if (r.method === 'POST' && r.path === '/v13/deployments' && r.status === 200) created++;
    const key = endpointKey(r.method, r.path, known);
    byEndpoint[key] = (byEndpoint[key] ?? 0) + 1;
    if (r.auth !== 'valid') badAuth++;
    if (r.status === 429 || (r.status ?? 0) >= 500) throttled++;
  }
  const projects: Record<string, ProjectState> = {};
  for (const name of names) {
    const p = s.project(name);
    const prod = p.production ? s.deployments.get(p.production) : undefined;
    const pointing = p.domains.map((d) => s.aliases.get(d) ?? null);
    projects[name] = {
      production: p.production,
      release: prod?.meta.hdRelease ?? null,
      domains: pointing.every((id) => id === pointing[0]) ? (pointing[0] ?? null) : null,
    };
  }
  return {
    requests: s.requests.length,
    byEndpoint,
    badAuth,
    throttled,
    deploymentsCreated: created,
    peakBuildsInFlight: s.peakInFlight,
    projects,
  };
}

async function main(): Promise<void> {
  const [root, settingsJson] = process.argv.slice(2);
  if (!root || !settingsJson || !process.send) {
    process.stderr.write('usage: fork(standin-child.js, [ROOT, SETTINGS_JSON]) with an IPC channel\n');
    process.exitCode = 2;
    return;
  }
  const settings = JSON.parse(settingsJson) as StandinSettings;
  const standin = await loadStandin(root).startVercelStandin(settings);
  const send = (m: StandinReply | StandinReady) => process.send?.(m);
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    await standin.close().catch(() => undefined);
    process.disconnect?.();
  };
  process.on('disconnect', () => void close().then(() => process.exit(0)));
  process.on('message', (m: StandinRequestMessage) => {
    try {
      if (m.op === 'add-projects') {
        const productions: Record<string, string> = {};
        for (const name of m.names)
          productions[name] = standin.addProject({ name, domains: [`${name}.example.com`] }).production ?? '';
        send({ id: m.id, ok: true, productions });
      } else if (m.op === 'state') send({ id: m.id, ok: true, stats: stateOf(standin, m.names, m.since) });
      else if (m.op === 'close') {
        send({ id: m.id, ok: true });
        void close();
      }
    } catch (err) {
      send({ id: m.id, ok: false, error: (err as Error).message });
    }
  });
  send({ op: 'ready', apiUrl: standin.apiUrl, caFile: standin.caFile });
}

main().catch((err: Error) => {
  process.stderr.write(`vercel stand-in: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
