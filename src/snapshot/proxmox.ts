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
  /** The longest pause between task status polls (default 1 s); the first polls come sooner. */
  pollMs?: number;
  /** The run's cancellation: every HTTP call and every poll pause ends at once when it fires. */
  signal?: AbortSignal;
}

interface PveAnswer<T> {
  data: T;
  errors?: Record<string, string>;
}

/** How a Proxmox task ended; `warnings` is set when it ended "WARNINGS: n" (done, but worth a look). */
export interface TaskOutcome {
  upid: string;
  node: string;
  exitstatus: string;
  warnings?: string[];
}

export interface PveSnapshot {
  name: string;
  snaptime?: number;
  description?: string;
}

/**
 * Proxmox's own UPID grammar (PVE::Tools::upid_decode): UPID:node:pid:pstart:starttime:type:id:user:
 * with pid, pstart and starttime in hex. The node in it is where the task runs, so it is polled there.
 */
const UPID_RE =
  /^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?):[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8,9}:[0-9A-Fa-f]{8}:[^:\s]+:[^:\s]*:[^:\s]+:$/;

export function parseUpid(value: unknown): { upid: string; node: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const m = UPID_RE.exec(value);
  return m ? { upid: value, node: m[1] } : undefined;
}

/** A task that stopped with one of these succeeded; Proxmox reports anything else as the task's error text. */
const WARNINGS_RE = /^WARNINGS: \d+$/;

/** The description this tool gives its snapshots; with the name prefix it tells ours from an operator's. */
export const SNAPSHOT_DESCRIPTION_MARK = 'homelab-deploy';

/**
 * The few Proxmox VE API calls a deploy needs: snapshot create / rollback / delete / list, and task polling.
 * Proxmox answers long operations with a task id (UPID) whose status must be polled until it stops.
 */
export class ProxmoxClient {
  constructor(private readonly t: ProxmoxTarget) {}

  /** "pve/qemu/101", for messages. */
  get vm(): string {
    return `${this.t.node}/${this.t.type}/${this.t.vmid}`;
  }

  private get base(): string {
    return `/api2/json/nodes/${encodeURIComponent(this.t.node)}/${this.t.type}/${this.t.vmid}`;
  }

  private cancelledError(what: string): DeployError {
    return new DeployError('cancelled', `Proxmox ${this.vm}: cancelled ${what}`);
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
      signal: this.t.signal,
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
    try {
      return (JSON.parse(res.body) as PveAnswer<T>).data;
    } catch {
      // A reverse proxy's login page or an HTML error answers 200 too; say what came back instead of a SyntaxError.
      throw new DeployError(
        'command-failed',
        `Proxmox ${method} ${url.pathname}: HTTP ${res.status} but the answer is not JSON (${JSON.stringify(res.body.slice(0, 80))}); is ${this.t.api} the Proxmox API?`,
      );
    }
  }

  /** Starts a task and checks the answer is a task id, so a wrong endpoint fails here and not in the polling. */
  private async startTask(what: string, method: string, path: string, params?: Record<string, string>) {
    const answer = await this.call<unknown>(method, path, params);
    const task = parseUpid(answer);
    if (!task)
      throw new DeployError(
        'command-failed',
        `Proxmox ${method} ${path} (${what} on ${this.vm}) answered ${JSON.stringify(answer)?.slice(0, 120)}, expected a task id "UPID:node:pid:pstart:starttime:type:id:user:"`,
      );
    return task;
  }

  /**
   * Waits for a task to stop. It succeeded if it ended "OK" or "WARNINGS: n" (Proxmox's two success values;
   * the warnings' text is read from the task log); any other exit status is the task's error.
   */
  async waitTask(upid: string, what = 'task'): Promise<TaskOutcome> {
    const task = parseUpid(upid);
    if (!task)
      throw new DeployError(
        'command-failed',
        `Proxmox ${this.vm}: ${JSON.stringify(upid)} is not a task id, expected "UPID:node:..."`,
      );
    const deadline = Date.now() + this.t.taskTimeoutMs;
    const path = `/api2/json/nodes/${encodeURIComponent(task.node)}/tasks/${encodeURIComponent(upid)}`;
    const cancelled = () =>
      this.cancelledError(`while waiting for ${what} (task ${upid} keeps running on ${task.node})`);
    for (let poll = 0; ; poll++) {
      const st = await this.call<{ status: string; exitstatus?: string }>('GET', `${path}/status`).catch(
        (err: unknown) => {
          throw err instanceof DeployError && err.errorClass === 'cancelled' ? cancelled() : err;
        },
      );
      if (st.status === 'stopped') {
        const exit = st.exitstatus ?? '';
        if (exit === 'OK') return { upid, node: task.node, exitstatus: exit };
        if (WARNINGS_RE.test(exit))
          return { upid, node: task.node, exitstatus: exit, warnings: await this.taskWarnings(path, exit) };
        throw new DeployError(
          'command-failed',
          `Proxmox ${what} on ${this.vm} failed (task ${upid}): ${exit || 'no exit status'}`,
        );
      }
      if (Date.now() >= deadline)
        throw new DeployError(
          'timeout',
          `Proxmox ${what} on ${this.vm} still running after ${this.t.taskTimeoutMs / 1000}s (task ${upid}); it keeps running on ${task.node}: check it in the Proxmox task log before retrying`,
        );
      // Most snapshot tasks end within a second: poll fast first, then back off to pollMs.
      const pause = Math.min(100 * 2 ** poll, this.t.pollMs ?? 1000);
      await sleep(Math.min(pause, Math.max(0, deadline - Date.now())), this.t.signal);
      // Stopping the wait does not stop the task (a half-made snapshot leaves the guest locked), so say where it is.
      if (this.t.signal?.aborted) throw cancelled();
    }
  }

  /** The task log's warning lines; the log is a nicety, so failing to read it only loses the detail. */
  private async taskWarnings(taskPath: string, exit: string): Promise<string[]> {
    try {
      const log = await this.call<{ n: number; t: string }[]>('GET', `${taskPath}/log?start=0&limit=500`);
      const lines = log.map((l) => l.t).filter((t) => /^WARN(ING)?:/i.test(t));
      return lines.length ? lines.slice(0, 20) : [exit];
    } catch (err) {
      if (err instanceof DeployError && err.errorClass === 'cancelled') throw err;
      return [`${exit} (task log unreadable: ${(err as Error).message})`];
    }
  }

  async createSnapshot(name: string, description: string): Promise<TaskOutcome> {
    const task = await this.startTask('snapshot', 'POST', `${this.base}/snapshot`, {
      snapname: name,
      description,
    });
    return this.waitTask(task.upid, `snapshot ${name}`);
  }

  /** Rolls the guest back to `name` and starts it if the rollback left it stopped. Returns every task it ran. */
  async rollback(name: string): Promise<TaskOutcome[]> {
    if (this.t.signal?.aborted) throw this.cancelledError(`before rolling back to ${name}`);
    // Once the rollback request is sent the guest may be going down whatever we do: seeing the answer, waiting for
    // the task and starting the guest again is what keeps a cancelled run from leaving the host stopped, so from
    // here on the cancellation is not honoured (the second signal still ends the process).
    const finish = new ProxmoxClient({ ...this.t, signal: undefined });
    const task = await finish.startTask(
      `rollback to ${name}`,
      'POST',
      `${this.base}/snapshot/${encodeURIComponent(name)}/rollback`,
    );
    const outcomes = [await finish.waitTask(task.upid, `rollback to ${name}`)];
    // A rollback without saved RAM state leaves the guest stopped; a deploy target must come back up.
    const status = await finish.call<{ status: string }>('GET', `${this.base}/status/current`);
    if (status.status !== 'running') {
      const start = await finish.startTask('start', 'POST', `${this.base}/status/start`);
      outcomes.push(await finish.waitTask(start.upid, 'start after rollback'));
    }
    return outcomes;
  }

  async deleteSnapshot(name: string): Promise<TaskOutcome> {
    const task = await this.startTask(
      `delete snapshot ${name}`,
      'DELETE',
      `${this.base}/snapshot/${encodeURIComponent(name)}`,
    );
    return this.waitTask(task.upid, `delete snapshot ${name}`);
  }

  async listSnapshots(): Promise<PveSnapshot[]> {
    const list = await this.call<PveSnapshot[]>('GET', `${this.base}/snapshot`);
    // "current" is the running state Proxmox lists with the snapshots, not a snapshot.
    return list.filter((s) => s.name !== 'current');
  }

  /**
   * This tool's snapshots beyond the newest `keep`, oldest last (the protected ones count towards `keep` and are
   * never returned). Ours carry the name prefix AND our description mark, so an operator's "hd-..." snapshot is safe.
   */
  async pruneCandidates(prefix: string, keep: number, protect: string[] = []): Promise<PveSnapshot[]> {
    const ours = (await this.listSnapshots()).filter(
      (s) => s.name.startsWith(prefix) && (s.description ?? '').startsWith(SNAPSHOT_DESCRIPTION_MARK),
    );
    const kept = ours.filter((s) => protect.includes(s.name)).length;
    return ours
      .filter((s) => !protect.includes(s.name))
      .sort((a, b) => (b.snaptime ?? 0) - (a.snaptime ?? 0))
      .slice(Math.max(0, keep - kept));
  }
}
