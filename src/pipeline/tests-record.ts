import type { StageConfig } from '../config/types';
import type { TestsReport } from '../report/types';
import type { Plan } from '../plan/plan';
import { record, Stop, type RunState } from './run-state';

/** Where a stage's tests leave their record: the target they ran on, or the stage's first target for the runner. */
export function testsRecordTarget(stage: StageConfig): string {
  return stage.tests?.on && stage.tests.on !== 'runner' ? stage.tests.on : stage.targets[0];
}

/** Writes that this commit passed the stage's tests, where a later run's `--skip-tests` looks for it. */
export async function recordTestsPassed(
  state: RunState,
  stage: StageConfig,
  report: TestsReport,
): Promise<void> {
  const { ctx } = state;
  const name = testsRecordTarget(stage);
  await state.targets
    .get(name)
    .appendLog({
      event: 'tests',
      stage: stage.name,
      result: 'passed',
      on: report.on,
      durationMs: report.durationMs,
      junit: report.junit,
    })
    .catch((err: unknown) =>
      ctx.emit({
        type: 'log',
        level: 'warn',
        message: `${name}: the tests record was not written: ${ctx.errorInfo(err).message}`,
      }),
    );
}

interface TestsRecord {
  time?: string;
  runUrl?: string;
  commit?: string;
}

/**
 * `--skip-tests`: every stage of the run with tests must have a record that this very commit passed them on the
 * same target; a stage without one refuses the run before anything is deployed, unless forced (audited). Returns
 * the report each stage shows instead of running its tests.
 */
export async function checkTestsRecords(
  state: RunState,
  plan: Plan,
  mode: true | 'force',
): Promise<Map<string, TestsReport>> {
  const { ctx } = state;
  const out = new Map<string, TestsReport>();
  for (const p of plan.phases) {
    const stage = p.stage;
    if (p.kind !== 'stage' || !stage?.tests) continue;
    const on = testsRecordTarget(stage);
    const log = await state.targets
      .get(on)
      .readReleaseLog()
      .catch(() => '');
    const passed = log
      .split('\n')
      .map((l) => {
        try {
          return JSON.parse(l) as TestsRecord & { event?: string; result?: string; stage?: string };
        } catch {
          return undefined;
        }
      })
      .filter(
        (x) =>
          x?.event === 'tests' &&
          x.result === 'passed' &&
          x.stage === stage.name &&
          x.commit === ctx.release.commit,
      )
      .pop();
    if (!passed && mode !== 'force')
      throw new Stop('aborted', {
        class: 'precondition',
        message: `--skip-tests: commit ${ctx.release.commit.slice(0, 12)} has no successful tests record for stage ${stage.name} on ${on}; run the tests (drop --skip-tests), or skip them anyway with --skip-tests=force (audited)`,
        phase: stage.name,
      });
    if (!passed)
      record(
        state,
        'tests-skipped',
        on,
        `stage ${stage.name}: tests skipped without a passing record (forced)`,
      );
    out.set(stage.name, {
      on: stage.tests.on,
      ok: true,
      exitCode: 0,
      durationMs: 0,
      outputTail: passed
        ? `skipped: commit ${ctx.release.commit.slice(0, 12)} passed these tests on ${on} at ${passed.time}${passed.runUrl ? ` (${passed.runUrl})` : ''}`
        : 'skipped without a passing record (--skip-tests=force)',
      skipped: true,
    });
  }
  return out;
}
