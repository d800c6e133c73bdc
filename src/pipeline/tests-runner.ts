import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestsConfig } from '../config/types';
import { DeployError } from '../errors';
import type { HealthSubject } from '../health/subject';
import type { TestsReport } from '../report/types';
import type { RunContext } from '../run/context';
import type { TargetSet } from '../targets';
import { renderShellTemplate } from '../util/template';
import { parseJunit } from './junit';

const TAIL = 4000;

const killedNote = (timeoutMs: number) =>
  `\n[homelab-deploy] tests exceeded ${Math.round(timeoutMs / 1000)}s and were killed`;

interface Outcome {
  exitCode: number | null;
  output: string;
  junitXml?: string;
  junitMissing?: string; // where the JUnit file was expected, when the tests did not write it
  timedOut?: boolean;
}

/**
 * Runs a stage's test command on a target (an SSH host runs it in the release directory) or on the runner (in
 * the config file's directory, where a relative command and JUnit path are meant); its exit code gates the next
 * stage. A JUnit file left by an earlier run is deleted first, so stale results are never reported as this run's.
 * On a timeout the output so far is kept: it is what says where the tests hung.
 */
export async function runTests(
  ctx: RunContext,
  targets: TargetSet,
  tests: TestsConfig,
  stage: string,
  stageTargets: string[],
): Promise<TestsReport> {
  const started = Date.now();
  const target = targets.get(tests.on === 'runner' ? stageTargets[0] : tests.on);
  const subject = target.healthSubject(stage);
  // Values reach the shell quoted, whatever a host var or address contains.
  const command = renderShellTemplate(tests.run, subject.vars, `stages.${stage}.tests.run`);
  let r: Outcome;
  if (tests.on === 'runner') r = await onRunner(ctx, tests, subject, command);
  else if (target.runTests)
    r = await target.runTests(command, { stage, timeoutMs: tests.timeoutMs, junit: tests.junit });
  else
    throw new DeployError(
      'config',
      `stages.${stage}.tests.on: ${tests.on} is a ${target.kind} target, which cannot run tests itself; use "runner"`,
    );
  let output = r.output + (r.timedOut ? killedNote(tests.timeoutMs) : '');
  if (r.junitMissing) output += `\n[homelab-deploy] the tests wrote no JUnit report at ${r.junitMissing}`;
  output = ctx.redactor.redact(output);
  return {
    on: tests.on,
    ok: r.exitCode === 0,
    exitCode: r.exitCode,
    durationMs: Date.now() - started,
    outputTail: output.length > TAIL ? '…' + output.slice(-TAIL) : output,
    junit: r.junitXml ? parseJunit(r.junitXml) : undefined,
  };
}

async function onRunner(
  ctx: RunContext,
  tests: TestsConfig,
  subject: HealthSubject,
  command: string,
): Promise<Outcome> {
  const cwd = ctx.config.dir;
  const junit = tests.junit ? path.resolve(cwd, tests.junit) : undefined;
  if (junit) await fs.promises.rm(junit, { force: true });
  const r = await runLocal(command, tests.timeoutMs, { ...ctx.env, ...subject.env }, ctx.signal, cwd);
  if (!junit) return r;
  const junitXml = await fs.promises.readFile(junit, 'utf8').catch(() => undefined);
  return { ...r, junitXml, junitMissing: junitXml === undefined ? junit : undefined };
}

function runLocal(
  command: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  cwd: string,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const add = (d: Buffer) => {
      output += d.toString('utf8');
      if (output.length > 4 * TAIL) output = output.slice(-2 * TAIL);
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    const killGroup = () => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    signal.addEventListener('abort', killGroup, { once: true });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', killGroup);
      // The note goes after everything the tests printed, so the tail shows where they hung and then why.
      resolve({ exitCode: timedOut ? null : code, output, timedOut });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ exitCode: null, output: err.message });
    });
  });
}
