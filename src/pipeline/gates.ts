import type { Plan } from '../plan/plan';
import { inWindow, nextOpening } from '../plan/window';
import { sleep } from '../util/duration';
import { record, Stop, type RunState } from './run-state';

/**
 * The deploy window: outside it a run touches nothing. It refuses, or waits for the window to open when asked
 * to; `--ignore-window` deploys anyway and says so in the audit trail.
 */
export async function openWindow(state: RunState, opts: { ignore?: boolean; wait?: boolean }): Promise<void> {
  const { ctx } = state;
  const w = ctx.config.window;
  if (!w || inWindow(w, new Date())) return;
  if (opts.ignore) {
    record(state, 'window-ignored', ctx.config.project, `deployed outside the window ${w.text}`);
    ctx.emit({
      type: 'log',
      level: 'warn',
      message: `outside the deploy window (${w.text}): --ignore-window deploys anyway`,
    });
    return;
  }
  const opens = nextOpening(w, new Date());
  const when = opens ? `it opens next at ${opens.toISOString()}` : 'it does not open within two weeks';
  if ((opts.wait || w.wait) && opens) {
    ctx.emit({
      type: 'log',
      level: 'info',
      message: `outside the deploy window (${w.text}); waiting: ${when}`,
    });
    await sleep(opens.getTime() - Date.now(), ctx.signal);
    if (!ctx.signal.aborted) return;
  }
  throw new Stop('aborted', {
    class: 'precondition',
    message: `outside the deploy window (${w.text}); ${when}. Nothing was touched. Wait for it (--wait-window, window.wait) or deploy anyway with --ignore-window (audited)`,
    phase: 'preflight',
  });
}

/**
 * A run that deploys to more targets than checkpoint.above needs someone to say yes first: on the command line
 * `--yes` (or the prompt), in a workflow the job behind the approval gate passes it on.
 */
export function checkpoint(state: RunState, plan: Plan, confirmed: boolean | undefined): void {
  const { config } = state.ctx;
  const n = plan.deploying.length;
  if (n <= config.checkpointAbove || confirmed) return;
  throw new Stop('aborted', {
    class: 'precondition',
    message: `this run would deploy to ${n} targets, more than checkpoint.above (${config.checkpointAbove}): confirm it (homelab-deploy run --yes, or the action's confirm input in the job behind the approval); nothing was touched`,
    phase: 'preflight',
  });
}
