import { syncEnvFile } from '../../deploy/env-sync';
import { DeployError } from '../../errors';
import { mapLimit } from '../../remote/semaphore';
import { endPhase, firstFailure, hostResult, startPhase } from '../phase-report';
import type { PlannedPhase } from '../plan';
import { hostRun, Stop, type RunState } from '../run-state';

/**
 * Writes each host's env file (atomic, 0600, verified on the host). A failure aborts the run; the files already
 * replaced on other hosts are put back when the run ends, like every env file of an aborted run.
 */
export async function runSecrets(
  state: RunState,
  p: PlannedPhase,
  file: string,
  envFiles: Map<string, string>,
): Promise<void> {
  const { ctx } = state;
  const t0 = Date.now();
  const r = startPhase(state, p);
  r.hosts = await mapLimit(p.hosts, ctx.config.parallel, async (name) => {
    const h0 = Date.now();
    const h = hostRun(state, name);
    try {
      const content = envFiles.get(name);
      if (content === undefined) throw new Error(`internal: no env file rendered for ${name}`);
      const res = await syncEnvFile(ctx, h.host, file, content);
      if (res.state === 'written') h.envWritten = true;
      if (res.result && !res.result.ok)
        throw new DeployError(
          'command-failed',
          `writing ${file} failed: ${res.result.failed?.output?.trim()}`,
          {
            host: name,
          },
        );
      const rep = hostResult(state, p.name, name, h0, res.result);
      rep.detail = { file, state: res.state, changed: res.changed.join(',') };
      return rep;
    } catch (err) {
      return hostResult(state, p.name, name, h0, undefined, err);
    }
  });
  const failed = firstFailure(r);
  endPhase(state, r, t0, failed);
  if (failed) throw new Stop('aborted', failed);
}
