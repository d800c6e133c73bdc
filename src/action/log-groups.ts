import { progressPrinter } from '../report/progress';
import type { DeployEvent } from '../run/events';

/** The parts of @actions/core the log needs; tests pass their own. */
export interface ActionLog {
  startGroup(title: string): void;
  endGroup(): void;
  info(line: string): void;
  error(message: string, props?: { title?: string }): void;
}

const names = (hosts: string[]) => (hosts.length > 12 ? `${hosts.length} targets` : hosts.join(', '));

/**
 * The run's events as an Actions log: one collapsible group per phase, and for a fleet stage one per wave, so a
 * 1500-target rollout is a handful of groups with a progress line every 10 % and the failures as they happen,
 * not thousands of lines. Phase failures and escalations are also annotations, visible on the run's page.
 */
export function actionLogger(log: ActionLog): { onEvent(e: DeployEvent): void; close(): void } {
  let open = false;
  const start = (title: string) => {
    if (open) log.endGroup();
    log.startGroup(title);
    open = true;
  };
  const end = () => {
    if (open) log.endGroup();
    open = false;
  };
  const print = progressPrinter({ write: (t) => log.info(t.replace(/\n$/, '')), tty: false });
  return {
    onEvent(e) {
      if (e.type === 'phase-start') start(`${e.phase} [${names(e.hosts)}]`);
      if (e.type === 'wave-start')
        start(
          `${e.phase} wave ${e.wave}/${e.waves}: ${e.targets} target${e.targets === 1 ? '' : 's'}${e.wave === 1 && e.waves > 1 ? ' (canary)' : ''}`,
        );
      print(e);
      if (e.type === 'wave-end') end();
      if (e.type === 'phase-end') {
        end();
        if (!e.ok)
          log.error(`${e.phase}: [${e.error?.class}] ${e.error?.message}`, {
            title: `homelab-deploy ${e.phase} failed`,
          });
      }
      if (e.type === 'escalation')
        log.error(
          `${e.escalation.stage} wave ${e.escalation.wave}: ${e.escalation.reason}; first failing: ${e.escalation.firstFailing.join(', ')}`,
          { title: 'homelab-deploy escalation: the failure budget was passed' },
        );
    },
    close: end,
  };
}
