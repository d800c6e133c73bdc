import { abortingHostPhase } from '../phase-report';
import type { PlannedPhase } from '../../plan/plan';
import { targetRun, type RunState } from '../run-state';

/**
 * Writes each target's env file (atomic, 0600, verified on the target). A failure aborts the run; the files already
 * replaced on other targets (and on the failed one, if its write got that far) are put back when the run ends, like
 * every env file of an aborted run. Targets
 * without an env file of their own (a Vercel project, a runner platform) get the values in their commands'
 * environment instead, and are skipped here.
 */
export function runSecrets(
  state: RunState,
  p: PlannedPhase,
  file: string,
  envFiles: Map<string, string>,
): Promise<void> {
  return abortingHostPhase(state, p, async (name) => {
    const h = targetRun(state, name);
    const content = envFiles.get(name);
    if (!h.target.writeSecrets || content === undefined)
      return { detail: { file, state: 'not-applicable', changed: '' } };
    let res;
    try {
      res = await h.target.writeSecrets(file, content);
    } catch (err) {
      // The write may have got as far as the swap before it failed (a lost channel, a cancel): the cleanup then
      // undoes exactly what this run did there, which is nothing if it got nowhere.
      h.envWritten = true;
      throw err;
    }
    if (res.state === 'written') h.envWritten = true;
    return { res: res.steps, detail: { file, state: res.state, changed: res.changed.join(',') } };
  });
}
