import { DeployError } from '../errors';
import { sleep } from '../util/duration';
import { pinnedRequest, type TlsTrust } from './https';

export interface ProxmoxTarget {
  api: string; // https://pve.example.com:8006
  node: string;
  vmid: number;
  type: 'qemu' | 'lxc';
  token: string; // USER@REALM!TOKENID=SECRET (from the runner's environment; never logged)
  trust: TlsTrust;
  timeoutMs: number;
  taskTimeoutMs: number;
  pollMs?: number;
}

interface PveAnswer<T> {
  data: T;
  errors?: Record<string, string>;
}

/**
 * The few Proxmox VE API calls a deploy needs: snapshot create / rollback / delete / list, and task polling.
 * Proxmox answers long operations with a task id (UPID) whose status must be polled until it stops.
 */
export class ProxmoxClient {
  constructor(private readonly t: ProxmoxTarget) {}

  private get base(): string {
    return `/api2/json/nodes/${encodeURIComponent(this.t.node)}/${this.t.type}/${this.t.vmid}`;
  }

  private async call<T>(method: string, path: string, params?: Record<string, string>): Promise<T> {
    const url = new URL(path, this.t.api);
    const body = params ? new URLSearchParams(params).toString() : undefined;
    const res = await pinnedRequest(url, this.t.trust, {
      method,
      headers: {
        authorization: `PVEAPIToken=${this.t.token}`,
        accept: 'application/json',
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
      timeoutMs: this.t.timeoutMs,
    });
    if (res.status < 200 || res.status >= 300) {
      // Proxmox puts its message in the status line; parameter errors come as {"errors": {...}}.
      let detail = res.statusText;
      try {
        const parsed = JSON.parse(res.body) as PveAnswer<unknown>;
        if (parsed.errors)
          detail +=
            ' ' +
            Object.entries(parsed.errors)
              .map(([k, v]) => `${k}: ${String(v).trim()}`)
              .join('; ');
      } catch {
        /* not JSON */
      }
      const cls =
        res.status === 401
          ? 'auth'
          : res.status === 403
            ? 'auth'
            : res.status >= 500
              ? 'command-failed'
              : 'precondition';
      throw new DeployError(cls, `Proxmox ${method} ${url.pathname}: HTTP ${res.status} ${detail.trim()}`);
    }
    return (JSON.parse(res.body) as PveAnswer<T>).data;
  }

  /** Waits for a task to stop and fails unless it ended "OK". */
  async waitTask(upid: string): Promise<void> {
    const deadline = Date.now() + this.t.taskTimeoutMs;
    const path = `/api2/json/nodes/${encodeURIComponent(this.t.node)}/tasks/${encodeURIComponent(upid)}/status`;
    for (;;) {
      const st = await this.call<{ status: string; exitstatus?: string }>('GET', path);
      if (st.status === 'stopped') {
        if (st.exitstatus === 'OK') return;
        throw new DeployError('command-failed', `Proxmox task ${upid} failed: ${st.exitstatus ?? 'unknown'}`);
      }
      if (Date.now() > deadline)
        throw new DeployError(
          'timeout',
          `Proxmox task ${upid} still running after ${this.t.taskTimeoutMs / 1000}s`,
        );
      await sleep(this.t.pollMs ?? 1000);
    }
  }

  async createSnapshot(name: string, description: string): Promise<void> {
    await this.waitTask(
      await this.call<string>('POST', `${this.base}/snapshot`, { snapname: name, description }),
    );
  }

  async rollback(name: string): Promise<void> {
    await this.waitTask(
      await this.call<string>('POST', `${this.base}/snapshot/${encodeURIComponent(name)}/rollback`),
    );
    // A rollback without saved RAM state leaves the guest stopped; a deploy target must come back up.
    const status = await this.call<{ status: string }>('GET', `${this.base}/status/current`);
    if (status.status !== 'running')
      await this.waitTask(await this.call<string>('POST', `${this.base}/status/start`));
  }

  async deleteSnapshot(name: string): Promise<void> {
    await this.waitTask(
      await this.call<string>('DELETE', `${this.base}/snapshot/${encodeURIComponent(name)}`),
    );
  }

  async listSnapshots(): Promise<{ name: string; snaptime?: number }[]> {
    return this.call<{ name: string; snaptime?: number }[]>('GET', `${this.base}/snapshot`);
  }

  /** Deletes this tool's snapshots (by prefix) beyond the newest `keep`; never touches others' snapshots. */
  async prune(prefix: string, keep: number, protect: string[] = []): Promise<string[]> {
    const ours = (await this.listSnapshots())
      .filter((s) => s.name.startsWith(prefix) && !protect.includes(s.name))
      .sort((a, b) => (b.snaptime ?? 0) - (a.snaptime ?? 0));
    const doomed = ours.slice(Math.max(0, keep - protect.length));
    for (const s of doomed) await this.deleteSnapshot(s.name);
    return doomed.map((s) => s.name);
  }
}
