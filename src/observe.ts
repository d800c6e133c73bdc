import type { Config, NotifyEvent } from './config/types';
import { reportFamilies } from './metrics/from-report';
import { render, type Family } from './metrics/exposition';
import { pushGroups, writeTextfile } from './metrics/publish';
import { eventFor, type NotifyContext } from './notify/message';
import { sendNotifications } from './notify/send';
import type { Report } from './report/types';
import type { Redactor } from './secrets/redact';

export interface ObserveOptions {
  env: NodeJS.ProcessEnv;
  redactor: Redactor;
  warn: (msg: string) => void;
  context: NotifyContext;
}

export async function notifyStarted(
  config: Config,
  release: Report['release'],
  o: ObserveOptions,
): Promise<void> {
  if (!config.notify) return;
  await sendNotifications(
    'started',
    { project: config.project, release },
    o.context,
    config.notify,
    o.env,
    o.redactor,
    o.warn,
  );
}

/**
 * After a run: the final notification and the run's metrics. Both are best effort with bounded time; neither can
 * change the report's status.
 */
export async function publishOutcome(
  config: Config,
  report: Report,
  o: ObserveOptions,
): Promise<{ event: NotifyEvent }> {
  const event = eventFor(report);
  const tasks: Promise<unknown>[] = [];
  if (config.notify)
    tasks.push(sendNotifications(event, report, o.context, config.notify, o.env, o.redactor, o.warn));
  const m = config.metrics;
  if (m && (m.pushgateway || m.textfile)) {
    const environment = m.environment ?? o.context.environment ?? config.project;
    const base = { project: config.project, environment };
    const { run, perHost } = reportFamilies(report, base);
    if (m.textfile) {
      try {
        writeTextfile(m.textfile, render(merge([run, ...perHost.values()])));
      } catch (err) {
        o.warn(`metrics textfile ${m.textfile}: ${(err as Error).message}`);
      }
    }
    if (m.pushgateway) {
      const groups = [
        { grouping: { environment }, text: render(run) },
        ...[...perHost].map(([host, fams]) => ({ grouping: { environment, host }, text: render(fams) })),
      ];
      tasks.push(
        pushGroups(m.pushgateway, groups, o.env, o.redactor).then(
          (problems) =>
            problems.length &&
            o.warn(`Pushgateway: ${problems.length} push(es) failed, first: ${problems[0]}`),
        ),
      );
    }
  }
  await Promise.allSettled(tasks);
  return { event };
}

/** Families with the same name from several groups become one family (a textfile may name each only once). */
function merge(groups: Family[][]): Family[] {
  const byName = new Map<string, Family>();
  for (const fams of groups) {
    for (const f of fams) {
      const m = byName.get(f.name);
      if (m) m.samples.push(...f.samples);
      else byName.set(f.name, { ...f, samples: [...f.samples] });
    }
  }
  return [...byName.values()];
}
