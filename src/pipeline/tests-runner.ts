import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseJunit } from './junit';
import type { HostConfig, TestsConfig } from '../config/types';
import { releaseEnv } from '../deploy/commands';
import { shExports, shQuote } from '../remote/quote';
import type { TestsReport } from '../report/types';
import { renderShellTemplate } from '../util/template';
import { templateVars, type RunContext } from '../run/context';

const TAIL = 4000;
/** Grace for the test command after TERM before KILL, and for the SSH command around it on top of that. */
const KILL_AFTER_S = 5;
const OUTER_GRACE_MS = (KILL_AFTER_S + 25) * 1000;

const killedNote = (timeoutMs: number) =>
  `\n[homelab-deploy] tests exceeded ${Math.round(timeoutMs / 1000)}s and were killed`;

interface Outcome {
  exitCode: number | null;
  output: string;
  junitXml?: string;
  junitMissing?: string; // where the JUnit file was expected, when the tests did not write it
}

/**
 * Runs a stage's test command on a host (over SSH, in the release directory) or on the runner (in the config
 * file's directory, where a relative command and JUnit path are meant); its exit code gates the next stage.
 * A JUnit file left by an earlier run is deleted first, so stale results are never reported as this run's. On a
 * timeout the output so far is kept: it is what says where the tests hung.
 */
export async function runTests(
  ctx: RunContext,
  tests: TestsConfig,
  stage: string,
  stageHosts: string[],
): Promise<TestsReport> {
  const started = Date.now();
  const host = ctx.config.hosts[tests.on === 'runner' ? stageHosts[0] : tests.on];
  // Values reach the shell quoted, whatever a host var or address contains.
  const command = renderShellTemplate(tests.run, templateVars(ctx, host, stage), `stages.${stage}.tests.run`);
  const r =
    tests.on === 'runner'
      ? await onRunner(ctx, tests, host, stage, command)
      : await onHost(ctx, tests, host, stage, command);
  let output = r.output;
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
  host: HostConfig,
  stage: string,
  command: string,
): Promise<Outcome> {
  const cwd = ctx.config.dir;
  const junit = tests.junit ? path.resolve(cwd, tests.junit) : undefined;
  if (junit) await fs.promises.rm(junit, { force: true });
  const r = await runLocal(
    command,
    tests.timeoutMs,
    { ...ctx.env, ...releaseEnv(host, ctx.config.project, ctx.release, stage) },
    ctx.signal,
    cwd,
  );
  if (!junit) return r;
  const junitXml = await fs.promises.readFile(junit, 'utf8').catch(() => undefined);
  return { ...r, junitXml, junitMissing: junitXml === undefined ? junit : undefined };
}

/**
 * One SSH command: delete the old JUnit file, run the tests under their own `timeout` (so a timeout still
 * returns the output, and the remote processes are killed), then print the exit code and the JUnit file's
 * <testsuite(s)> opening tags after a marker. Only those tags are sent back: parseJunit reads nothing else, and a
 * large report would not fit the captured output. A JUnit path is relative to the release directory, or
 * absolute; tests inside a container must write it to a path mounted from the host.
 */
async function onHost(
  ctx: RunContext,
  tests: TestsConfig,
  host: HostConfig,
  stage: string,
  command: string,
): Promise<Outcome> {
  const mark = `__hd_tests_${randomBytes(6).toString('hex')}__`;
  const seconds = Math.max(1, Math.ceil(tests.timeoutMs / 1000));
  const junit = tests.junit ? shQuote(tests.junit) : undefined;
  const script = [
    `cd ${shQuote(`${host.path}/current`)} || exit 1`,
    shExports(releaseEnv(host, ctx.config.project, ctx.release, stage)),
    junit ? `rm -f -- ${junit}` : '',
    `t0=$(date +%s)`,
    `timeout -k ${KILL_AFTER_S} ${seconds} sh -c ${shQuote(command)} </dev/null`,
    'rc=$?',
    // 124: timeout sent TERM; 137 after the limit: it had to send KILL.
    `if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ $(( $(date +%s) - t0 )) -ge ${seconds} ]; }; then rc=timeout; fi`,
    `printf '\\n%s\\n' "${mark}rc=$rc"`,
    junit
      ? `if [ -f ${junit} ]; then printf '%s\\n' "${mark}junit"; tr '\\r\\n' '  ' < ${junit} | grep -o '<testsuites\\{0,1\\}\\([[:space:]][^>]*\\)\\{0,1\\}>'; fi`
      : '',
    'exit 0',
  ]
    .filter(Boolean)
    .join('\n');
  let res;
  try {
    const conn = await ctx.pool.get(host.name);
    res = await conn.exec(script, { timeoutMs: tests.timeoutMs + OUTER_GRACE_MS, signal: ctx.signal });
  } catch (err) {
    return { exitCode: null, output: (err as Error).message };
  }
  const at = res.stdout.lastIndexOf(`\n${mark}rc=`);
  if (at < 0) return { exitCode: res.code === 0 ? null : res.code, output: res.stdout + res.stderr };
  const output = res.stdout.slice(0, at);
  const trailer = res.stdout.slice(at + 1);
  const rc = /rc=(\w+)/.exec(trailer)?.[1];
  const j = trailer.indexOf(`${mark}junit\n`);
  const junitXml = j >= 0 ? trailer.slice(j + mark.length + 6) : undefined;
  return {
    exitCode: rc === undefined || rc === 'timeout' ? null : Number(rc),
    output: output + res.stderr + (rc === 'timeout' ? killedNote(tests.timeoutMs) : ''),
    junitXml,
    junitMissing: tests.junit && junitXml === undefined ? `${host.name}:${tests.junit}` : undefined,
  };
}

function runLocal(
  command: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  cwd: string,
): Promise<{ exitCode: number | null; output: string }> {
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
      resolve({ exitCode: timedOut ? null : code, output: output + (timedOut ? killedNote(timeoutMs) : '') });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ exitCode: null, output: err.message });
    });
  });
}
