import { randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import type { DeploySettings, HealthCheck, HostConfig } from '../config/types';
import { shExports, shQuote } from '../remote/quote';
import type { Shell } from '../util/shell';
import { excerpt, type ProbeOptions, type ProbeResult } from './http';

export interface ServiceState {
  service: string;
  state: string;
  health: string;
}

type ComposeSettings = Extract<DeploySettings, { strategy: 'compose' }>;

const isPodman = (d: ComposeSettings) => {
  const engine = d.command.trim().split(/\s+/)[0];
  return engine === 'podman-compose' || engine === 'podman';
};

/**
 * Parses `ps --format json`: Docker Compose v2 prints one JSON object per line (v2.21 and later) or one JSON
 * array (earlier v2); podman prints an array of its own shape, with the compose service in a label and the
 * health only inside the Status text.
 */
export function parseStates(text: string, podman: boolean): ServiceState[] {
  const t = text.trim();
  if (!t) return [];
  const rows: Record<string, unknown>[] = t.startsWith('[')
    ? JSON.parse(t)
    : t
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l));
  return rows.map((r) => {
    if (podman) {
      const labels = (r.Labels ?? {}) as Record<string, string>;
      const status = String(r.Status ?? '');
      return {
        service:
          labels['com.docker.compose.service'] ?? String((r.Names as string[] | undefined)?.[0] ?? '?'),
        state: String(r.State ?? '').toLowerCase(),
        health: /\(healthy\)/.test(status)
          ? 'healthy'
          : /\(unhealthy\)/.test(status)
            ? 'unhealthy'
            : /\(starting\)/.test(status)
              ? 'starting'
              : '',
      };
    }
    return {
      service: String(r.Service ?? r.Name),
      state: String(r.State ?? '').toLowerCase(),
      health: String(r.Health ?? '').toLowerCase(),
    };
  });
}

/**
 * The services a podman-compose stack declares, from its compose files (merged in order, like compose does).
 * podman-compose 1.0.3 has no `config` command, and it ignores `profiles`, so every service gets containers
 * except those scaled to zero replicas.
 */
export function servicesFromComposeFiles(texts: string[]): string[] {
  const replicas = new Map<string, number | undefined>();
  for (const text of texts) {
    const doc = parseYaml(text, { merge: true }) as { services?: Record<string, unknown> } | null;
    for (const [name, svc] of Object.entries(doc?.services ?? {})) {
      const r = (svc as { deploy?: { replicas?: unknown } } | null)?.deploy?.replicas;
      replicas.set(name, r === undefined ? replicas.get(name) : Number(r));
    }
  }
  return [...replicas].filter(([, r]) => r !== 0).map(([name]) => name);
}

/** Compares what runs against what the stack declares; a declared service with no container is `missing`. */
export function compareServices(states: ServiceState[], wanted: string[]): ProbeResult {
  if (wanted.length === 0) return { ok: false, detail: 'no services of the stack are on this host' };
  const bad: string[] = [];
  for (const svc of wanted) {
    const s = states.filter((x) => x.service === svc);
    if (s.length === 0) bad.push(`${svc}: missing`);
    for (const c of s) {
      if (c.state !== 'running') bad.push(`${svc}: ${c.state || 'unknown'}`);
      else if (c.health && c.health !== 'healthy') bad.push(`${svc}: ${c.health}`);
    }
  }
  return bad.length
    ? { ok: false, detail: `services not running/healthy: ${bad.join(', ')}` }
    : { ok: true, detail: `${wanted.length} service(s) running` };
}

function psCommand(d: ComposeSettings, project: string): string {
  if (isPodman(d))
    return `podman ps -a --filter ${shQuote(`label=io.podman.compose.project=${project}`)} --format json`;
  return `${d.command} -p ${shQuote(project)} ps --all --format json`;
}

/** Prints the declared services (docker compose), or the compose files to parse here (podman-compose). */
function servicesCommand(d: ComposeSettings, project: string, mark: string): string {
  if (isPodman(d))
    return d.files
      .map((f) => `printf '%s\\n' ${shQuote(`${mark}file`)} && cat -- ${shQuote(f)}`)
      .join(' && ');
  // `config --services` honours profiles and merges every -f file, exactly as `up` saw them.
  return `${d.command} -p ${shQuote(project)}${d.files.map((f) => ` -f ${shQuote(f)}`).join('')} config --services`;
}

/**
 * Every service of the stack (or the listed ones) running, and healthy where it declares a healthcheck. The
 * stack's declared services come from the release's compose files, so a service that never got a container (it
 * failed to be created, or `up` stopped before it) counts as missing instead of going unnoticed. One round trip:
 * the container list and the service list are printed after each other, each followed by a marker with its exit
 * code.
 */
export async function probeCompose(
  shell: Shell,
  host: HostConfig,
  project: string,
  env: Record<string, string>,
  check: HealthCheck,
  o: ProbeOptions,
): Promise<ProbeResult> {
  const d = host.deploy;
  if (d.strategy !== 'compose')
    return { ok: false, detail: 'compose check on a host whose deploy strategy is not compose' };
  const mark = `__hd_${randomBytes(6).toString('hex')}__`;
  const ps = psCommand(d, project);
  const script = [
    `cd ${shQuote(`${host.path}/current`)} 2>/dev/null || echo 'no current release on this host' >&2`,
    shExports(env),
    `${ps}; printf '\\n%s\\n' "${mark}ps=$?"`,
    check.target ? 'true' : `${servicesCommand(d, project, mark)}; printf '\\n%s\\n' "${mark}services=$?"`,
  ].join('\n');
  const timer = AbortSignal.timeout(o.timeoutMs);
  let res;
  try {
    res = await shell.exec(script, { timeoutMs: o.timeoutMs, signal: AbortSignal.any([o.signal, timer]) });
  } catch (err) {
    if (timer.aborted && !o.signal.aborted) return { ok: false, detail: `no result within ${o.timeoutMs}ms` };
    throw err;
  }
  const parts = splitMarked(res.stdout, mark);
  const stderr = excerpt(res.stderr, o.redact);
  if (parts.ps?.code !== 0)
    return { ok: false, detail: `${ps}: exit ${parts.ps?.code ?? res.code}: ${stderr}` };
  let states: ServiceState[];
  try {
    states = parseStates(parts.ps.text, isPodman(d));
  } catch {
    return { ok: false, detail: `cannot parse the container list: ${excerpt(parts.ps.text, o.redact)}` };
  }
  let wanted: string[];
  if (check.target) wanted = check.target.split(',').map((s) => s.trim());
  else {
    if (parts.services?.code !== 0)
      return {
        ok: false,
        detail: `cannot list the stack's services (exit ${parts.services?.code ?? res.code}): ${stderr}`,
      };
    try {
      wanted = isPodman(d)
        ? servicesFromComposeFiles(parts.services.text.split(`${mark}file\n`).slice(1))
        : parts.services.text.split('\n').filter((l) => l.trim());
    } catch (err) {
      return { ok: false, detail: `cannot read the compose files: ${o.redact((err as Error).message)}` };
    }
  }
  return compareServices(states, wanted);
}

/** Splits `<output>\n<mark>name=<code>` sections; the newline printf adds before the marker is removed again. */
function splitMarked(stdout: string, mark: string): Record<string, { text: string; code: number }> {
  const out: Record<string, { text: string; code: number }> = {};
  const re = new RegExp(`\\n${mark}(\\w+)=(\\d+)\\n`, 'g');
  let from = 0;
  for (const m of stdout.matchAll(re)) {
    out[m[1]] = { text: stdout.slice(from, m.index), code: Number(m[2]) };
    from = (m.index ?? 0) + m[0].length;
  }
  return out;
}
