import { DeployError, toDeployError } from '../errors';

/**
 * What a provider did, for the run's report and the host's audit log: providers act, the runner records
 * (it alone knows when the host can be written to again, e.g. after a VM rollback rebooted it).
 */
export interface SnapshotAction {
  action: 'snapshot-created' | 'snapshot-rolled-back' | 'snapshot-deleted';
  host: string;
  provider: 'proxmox' | 'command';
  /** The provider's `describe`, e.g. "proxmox pve/qemu/101". */
  target: string;
  /** The snapshot's name. */
  name: string;
  ok: boolean;
  /** When it finished (ISO time). */
  time: string;
  durationMs: number;
  /** Proxmox task ids, so an operator can find the task log. */
  tasks?: string[];
  /** The action succeeded with warnings (Proxmox "WARNINGS: n", or the command provider could not record it). */
  warnings?: string[];
  error?: string;
  /** One line for the report's audit detail. */
  detail: string;
}

/** An infrastructure rollback point (VM or filesystem snapshot) taken before a host is changed. */
export interface SnapshotProvider {
  describe: string;
  create(name: string): Promise<SnapshotAction>;
  rollback(name: string): Promise<SnapshotAction>;
  /** Removes this tool's older snapshots beyond `keep`, never `protect`; returns what it deleted. */
  prune(protect: string[]): Promise<SnapshotAction[]>;
}

/** A failed snapshot action; `actions` holds it and whatever the same call had done before it failed. */
export class SnapshotActionError extends DeployError {
  constructor(
    cause: DeployError,
    readonly actions: SnapshotAction[],
  ) {
    super(cause.errorClass, cause.message, { host: cause.host, phase: cause.phase, cause });
    this.name = 'SnapshotActionError';
  }
}

const VERBS: Record<SnapshotAction['action'], [string, string]> = {
  'snapshot-created': ['created', 'create'],
  'snapshot-rolled-back': ['rolled back to', 'roll back to'],
  'snapshot-deleted': ['deleted', 'delete'],
};

/** Times `fn` and turns its result or failure into a SnapshotAction (a failure throws SnapshotActionError). */
export async function act(
  base: Pick<SnapshotAction, 'action' | 'host' | 'provider' | 'target' | 'name'>,
  fn: () => Promise<{ tasks?: string[]; warnings?: string[]; detail?: string }>,
  before: SnapshotAction[] = [],
): Promise<SnapshotAction> {
  const t0 = Date.now();
  const [done, todo] = VERBS[base.action];
  try {
    const r = await fn();
    const warnings = r.warnings?.length ? r.warnings : undefined;
    return {
      ...base,
      ok: true,
      time: new Date().toISOString(),
      durationMs: Date.now() - t0,
      tasks: r.tasks,
      warnings,
      detail: `${base.target} ${done} snapshot ${base.name}${r.detail ? ` ${r.detail}` : ''}${warnings ? ` (warnings: ${warnings.join('; ')})` : ''}`,
    };
  } catch (err) {
    const e = toDeployError(err, 'command-failed').withContext({ host: base.host });
    const failed: SnapshotAction = {
      ...base,
      ok: false,
      time: new Date().toISOString(),
      durationMs: Date.now() - t0,
      error: e.message,
      detail: `${base.target} FAILED to ${todo} snapshot ${base.name}: ${e.message}`,
    };
    throw new SnapshotActionError(e, [...before, failed]);
  }
}
