import * as fs from 'node:fs';
import type { DeployTool, PreparedRelease } from '../tools/tool';
import type { Measurement, RunFigures, ScenarioContext } from './types';
import { Interrupted } from './types';

/** The last lines a tool printed, to say why it failed. */
export function logTail(file: string, lines = 6): string {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => `    ${l}`)
      .join('\n');
  } catch {
    return '    (no output)';
  }
}

export function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '-');
}

export interface DeployOutcome {
  prepared: PreparedRelease;
  figures: RunFigures;
  /** why the run or its end state is wrong; undefined when every host is right */
  failure?: string;
  verifiedHosts: number;
}

/** Deploys one release with a tool, measured, then checks every host against the expected end state. */
export async function deployAndVerify(
  ctx: ScenarioContext,
  tool: DeployTool,
  release: string,
  previous: PreparedRelease | undefined,
): Promise<DeployOutcome> {
  const prepared = await tool.prepare(release);
  const figures = await ctx.measure(prepared.command, release);
  if (figures.interrupted) throw new Interrupted();
  const bad = prepared.verify(previous).filter((h) => h.problems.length);
  const verifiedHosts = ctx.n - bad.length;
  const failure = runFailure(ctx, figures, bad, `wrong after release ${release}`);
  return { prepared, figures, failure, verifiedHosts };
}

/**
 * Why a measured run failed, or undefined: a timeout, its exit code with the end of its log, the first hosts whose
 * end state is wrong (`wrong` says against what), sshd connections it left.
 */
export function runFailure(
  ctx: ScenarioContext,
  figures: RunFigures & { logFile: string },
  bad: { host: string; problems: string[] }[],
  wrong: string,
): string | undefined {
  const parts: string[] = [];
  if (figures.timedOut) parts.push(`timed out after ${Math.round(ctx.options.timeoutMs / 1000)} s`);
  else if (figures.exitCode !== 0)
    parts.push(
      `exit ${figures.exitCode ?? figures.signal} (log ${figures.logFile}):\n${logTail(figures.logFile)}`,
    );
  if (bad.length) {
    const shown = bad
      .slice(0, 5)
      .map((h) => `    ${h.host}: ${h.problems.join('; ')}`)
      .join('\n');
    parts.push(`${bad.length} of ${ctx.n} hosts ${wrong}:\n${shown}`);
  }
  if (figures.connectionsLeft > 0)
    parts.push(`${figures.connectionsLeft} sshd connection processes still alive 10 s after the tool exited`);
  return parts.length ? parts.join('\n  ') : undefined;
}

export function noteTimeout(ctx: ScenarioContext, label: string): void {
  ctx.timedOut.set(label, Math.min(ctx.n, ctx.timedOut.get(label) ?? Infinity));
}

export function measurement(
  ctx: ScenarioContext,
  tool: DeployTool,
  what: string,
  o?: DeployOutcome,
): Measurement {
  return {
    tool: tool.label,
    family: tool.family,
    what,
    n: ctx.n,
    figures: o?.figures,
    verifiedHosts: o?.verifiedHosts,
    failure: o?.failure,
  };
}

/**
 * The redeploy job with one tool, as scenario redeploy runs it: on freshly emptied hosts an untimed first deploy,
 * then the timed redeploy of a new release (current exists, so the previous release is recorded and the switch
 * replaces a link), each checked on every host. `what` names the row.
 */
export async function timedRedeploy(
  ctx: ScenarioContext,
  tool: DeployTool,
  what: string,
): Promise<Measurement> {
  const timedOutAt = ctx.timedOut.get(tool.label);
  if (timedOutAt !== undefined && ctx.n >= timedOutAt)
    return { ...measurement(ctx, tool, what), failure: `skipped: timed out at N=${timedOutAt}` };
  ctx.resetHosts();
  const base = slug(tool.label); // the log's name adds N
  ctx.log(`${tool.label}: warm-up deploy to ${ctx.n} hosts`);
  const warm = await deployAndVerify(ctx, tool, `${base}-1`, undefined);
  if (warm.failure) {
    if (warm.figures.timedOut) noteTimeout(ctx, tool.label);
    return { ...measurement(ctx, tool, what), failure: `warm-up deploy: ${warm.failure}` };
  }
  ctx.log(`${tool.label}: timed redeploy`);
  const timed = await deployAndVerify(ctx, tool, `${base}-2`, warm.prepared);
  if (timed.figures.timedOut) noteTimeout(ctx, tool.label);
  return measurement(ctx, tool, what, timed);
}
