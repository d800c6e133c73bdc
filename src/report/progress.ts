import type { DeployEvent } from '../run/events';
import { formatDuration } from '../util/duration';
import { renderEvent } from './text';

export interface ProgressOptions {
  write(text: string): unknown;
  /** A terminal: the wave's line is redrawn in place; otherwise a line is printed every `every` of the wave. */
  tty: boolean;
  /** Where a log (not a terminal) gets a progress line: each 10 % of a wave by default. */
  every?: number;
}

/**
 * Prints a run's events for a person: every step for a handful of targets, and for a fleet stage one live line
 * per wave (done, failed, running, rate, ETA) plus each failure as it happens, instead of lines per target.
 */
export function progressPrinter(o: ProgressOptions): (e: DeployEvent) => void {
  const fleet = new Set<string>();
  let live = false;
  let lastShare = 0;
  const clear = () => {
    if (live) o.write('\r\x1b[2K');
    live = false;
  };
  const line = (text: string) => {
    clear();
    o.write(text + '\n');
  };
  return (e) => {
    switch (e.type) {
      case 'wave-start':
        fleet.add(e.phase);
        lastShare = 0;
        line(
          `  ▶ ${e.phase} wave ${e.wave}/${e.waves}: ${e.targets} target${e.targets === 1 ? '' : 's'}${e.wave === 1 && e.waves > 1 ? ' (canary)' : ''}`,
        );
        return;
      case 'wave-progress': {
        const eta =
          e.etaSeconds !== undefined && e.done < e.total
            ? `, ETA ${formatDuration(e.etaSeconds * 1000)}`
            : '';
        const text = `    ${e.phase} wave ${e.wave}: ${e.done}/${e.total} done, ${e.failed} failed, ${e.running} running, ${e.perMinute}/min${eta}`;
        if (o.tty) {
          clear();
          o.write(text);
          live = true;
        } else {
          const share = e.total ? e.done / e.total : 1;
          if (share - lastShare >= (o.every ?? 0.1) || (e.done === e.total && lastShare < 1)) {
            lastShare = share;
            line(text);
          }
        }
        return;
      }
      case 'wave-end':
        line(
          `  ${e.failed ? '◐' : '✔'} ${e.phase} wave ${e.wave}: ${e.ok} ok, ${e.failed} failed${e.notStarted ? `, ${e.notStarted} not started` : ''} (${formatDuration(e.durationMs)})${e.stopped ? `; STOPPED: ${e.stopped}` : ''}`,
        );
        return;
      case 'escalation':
        line(
          `  🚨 ESCALATION: ${e.escalation.stage} wave ${e.escalation.wave}: ${e.escalation.reason}; first failing: ${e.escalation.firstFailing.join(', ')}`,
        );
        return;
      case 'host-step':
      case 'host-health':
        if (fleet.has(e.phase)) return;
        break;
      case 'host-end':
        if (fleet.has(e.phase) && e.ok) return;
        break;
      case 'retry':
        if (fleet.has(e.phase)) return;
        break;
      case 'phase-end':
        fleet.delete(e.phase);
        break;
    }
    const text = renderEvent(e);
    if (text) line(text);
  };
}
