import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { parseJunit } from './junit';
import type { TestsConfig } from '../config/types';
import { releaseEnv } from '../deploy/commands';
import { shExports, shQuote } from '../remote/quote';
import type { TestsReport } from '../report/types';
import { renderTemplate } from '../util/template';
import { templateVars, type RunContext } from './context';

const TAIL = 4000;

/** Runs a stage's test command on a host (over SSH) or on the runner; its exit code gates the next stage. */
export async function runTests(
  ctx: RunContext,
  tests: TestsConfig,
  stage: string,
  stageHosts: string[],
): Promise<TestsReport> {
  const started = Date.now();
  const host = ctx.config.hosts[tests.on === 'runner' ? stageHosts[0] : tests.on];
  const command = renderTemplate(tests.run, templateVars(ctx, host, stage), `stages.${stage}.tests.run`);
  let exitCode: number | null;
  let output: string;
  let junitXml: string | undefined;
  if (tests.on === 'runner') {
    ({ exitCode, output } = await runLocal(
      command,
      tests.timeoutMs,
      { ...ctx.env, ...releaseEnv(host, ctx.config.project, ctx.release, stage) },
      ctx.signal,
    ));
    if (tests.junit) junitXml = await fs.promises.readFile(tests.junit, 'utf8').catch(() => undefined);
  } else {
    const conn = await ctx.pool.get(host.name);
    const cwd = `cd ${shQuote(`${host.path}/current`)} || exit 1\n${shExports(releaseEnv(host, ctx.config.project, ctx.release, stage))}\n`;
    try {
      const res = await conn.exec(cwd + command, { timeoutMs: tests.timeoutMs, signal: ctx.signal });
      exitCode = res.code;
      output = res.stdout + res.stderr;
      if (tests.junit) {
        const xml = await conn
          .exec(`${cwd}cat ${shQuote(tests.junit)}`, { timeoutMs: 30_000 })
          .catch(() => undefined);
        if (xml?.code === 0) junitXml = xml.stdout;
      }
    } catch (err) {
      exitCode = null;
      output = (err as Error).message;
    }
  }
  output = ctx.redactor.redact(output);
  return {
    on: tests.on,
    ok: exitCode === 0,
    exitCode,
    durationMs: Date.now() - started,
    outputTail: output.length > TAIL ? '…' + output.slice(-TAIL) : output,
    junit: junitXml ? parseJunit(junitXml) : undefined,
  };
}

function runLocal(
  command: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
): Promise<{ exitCode: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
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
    const timer = setTimeout(() => {
      output += `\n[homelab-deploy] tests exceeded ${Math.round(timeoutMs / 1000)}s and were killed`;
      killGroup();
    }, timeoutMs);
    signal.addEventListener('abort', killGroup, { once: true });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', killGroup);
      resolve({ exitCode: code, output });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ exitCode: null, output: err.message });
    });
  });
}
