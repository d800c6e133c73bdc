import { syncEnvFile } from '../../deploy/env-sync';
import { DeployError } from '../../errors';
import { abortingHostPhase } from '../phase-report';
import type { PlannedPhase } from '../plan';
import { hostRun, type RunState } from '../run-state';

/**
 * Writes each host's env file (atomic, 0600, verified on the host). A failure aborts the run; the files already
 * replaced on other hosts are put back when the run ends, like every env file of an aborted run.
 */
export function runSecrets(
  state: RunState,
  p: PlannedPhase,
  file: string,
  envFiles: Map<string, string>,
): Promise<void> {
  return abortingHostPhase(state, p, async (name) => {
    const h = hostRun(state, name);
    const content = envFiles.get(name);
    if (content === undefined) throw new Error(`internal: no env file rendered for ${name}`);
    const res = await syncEnvFile(state.ctx, h.host, file, content);
    if (res.state === 'written') h.envWritten = true;
    if (res.result && !res.result.ok)
      throw new DeployError(
        'command-failed',
        `writing ${file} failed: ${res.result.failed?.output?.trim()}`,
        {
          host: name,
        },
      );
    return { res: res.result, detail: { file, state: res.state, changed: res.changed.join(',') } };
  });
}
