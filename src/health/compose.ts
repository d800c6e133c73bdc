import type { DeploySettings, HealthCheck, HostConfig } from '../config/types';
import type { RunContext } from '../pipeline/context';
import { shQuote } from '../remote/quote';
import type { ProbeResult } from './http';

interface ServiceState {
  service: string;
  state: string;
  health: string;
}

/** Docker Compose v2 prints one JSON object per line (or one array); podman prints an array. */
function parseStates(text: string, podman: boolean): ServiceState[] {
  const t = text.trim();
  if (!t) return [];
  const rows: Record<string, unknown>[] = t.startsWith('[')
    ? JSON.parse(t)
    : t.split('\n').map((l) => JSON.parse(l));
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

export function composeStateCommand(d: DeploySettings, project: string): string | undefined {
  if (d.strategy !== 'compose') return undefined;
  const engine = d.command.trim().split(/\s+/)[0];
  if (engine === 'podman-compose' || engine === 'podman') {
    return `podman ps -a --filter ${shQuote(`label=io.podman.compose.project=${project}`)} --format json`;
  }
  return `${d.command} -p ${shQuote(project)} ps --all --format json`;
}

/** Every service of the stack (or the listed ones) running, and healthy where it declares a healthcheck. */
export async function probeCompose(
  ctx: RunContext,
  host: HostConfig,
  check: HealthCheck,
): Promise<ProbeResult> {
  const cmd = composeStateCommand(host.deploy, ctx.config.project);
  if (!cmd) return { ok: false, detail: 'compose check on a host whose deploy strategy is not compose' };
  const conn = await ctx.pool.get(host.name);
  const res = await conn.exec(`cd ${shQuote(`${host.path}/current`)} 2>/dev/null; ${cmd}`, {
    timeoutMs: check.timeoutMs,
    signal: ctx.signal,
  });
  if (res.code !== 0)
    return {
      ok: false,
      detail: `${cmd}: exit ${res.code}: ${(res.stderr || res.stdout).trim().slice(-200)}`,
    };
  let states: ServiceState[];
  try {
    states = parseStates(res.stdout, cmd.startsWith('podman'));
  } catch {
    return { ok: false, detail: `cannot parse the service list: ${res.stdout.slice(0, 200)}` };
  }
  const wanted = check.target ? check.target.split(',') : [...new Set(states.map((s) => s.service))];
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
