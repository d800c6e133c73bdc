import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { deploy } from '../src/engine';
import { releaseIdFor } from '../src/run/release';
import { renderEvent, renderReportText } from '../src/report/text';
import type { DeployStatus, Report } from '../src/report/types';
import { Redactor } from '../src/secrets/redact';
import { startSandbox, type Sandbox } from './sandbox';

/** What the failure rules say each injected fault must end in. */
const EXPECTED: Record<string, DeployStatus> = {
  none: 'success',
  staging: 'failed',
  tests: 'failed',
  production: 'rolled_back',
  vps: 'partial_success',
  verify: 'rolled_back',
};

const FAULTS: Record<string, string> = {
  staging: 'the new release answers 503 on thinkpad (staging)',
  tests: 'the smoke test fails on thinkpad',
  production: 'the new release answers 503 on rtx1080 (production)',
  vps: 'the new release answers 503 on the vps, on every attempt',
  verify: 'rtx1080 turns unhealthy after its deploy, during final verification',
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      fail: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('npm run demo [-- --fail staging|tests|production|vps|verify] [--json]\n');
    return 0;
  }
  const fail = values.fail ?? 'none';
  if (!(fail in EXPECTED)) {
    process.stderr.write(
      `--fail must be one of ${Object.keys(FAULTS).join(', ')}, got ${JSON.stringify(fail)}\n`,
    );
    return 2;
  }
  const out = values.json ? process.stderr : process.stdout;
  const say = (s: string) => out.write(s + '\n');

  say(
    'homelab-deploy demo: starting three local SSH hosts (thinkpad = staging, rtx1080 = production, vps = public)...',
  );
  const sandbox = await startSandbox();
  let code: number;
  try {
    for (const h of Object.values(sandbox.hosts))
      say(
        `  ${h.name.padEnd(8)} ssh://127.0.0.1:${h.port}  host key ${h.fingerprint}  service port ${h.servicePort}`,
      );
    // The secret the stack receives in its .env; it must never show up in any output below.
    const env = { ...process.env, DEMO_API_TOKEN: `demo-secret-${Math.random().toString(36).slice(2)}` };

    say('\nFirst deploy (v1) so there is a release to roll back to...');
    const first = await deploy({
      configPath: sandbox.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
    });
    say(
      `  v1 ${first.release.id}: ${first.status} on ${first.systemsDeployed.join(', ')} in ${first.durationSeconds}s`,
    );
    if (first.status !== 'success') {
      say(renderReportText(first));
      return 1;
    }

    const commit = sandbox.commit('sample stack v2', (repo) =>
      fs.writeFileSync(path.join(repo, 'stack', 'VERSION'), 'v2\n'),
    );
    const v2 = releaseIdFor(commit);
    if (fail !== 'none') say(`\nInjected fault: ${FAULTS[fail]}`);
    inject(sandbox, fail, v2, 'before');
    say(`\nDeploying v2 (${v2}) through every phase:`);
    const report = await deploy({
      configPath: sandbox.configPath,
      phase: 'all',
      ref: 'HEAD',
      env,
      redactor: new Redactor(),
      onEvent: (e) => {
        if (e.type === 'phase-start' && e.phase === 'verify') inject(sandbox, fail, v2, 'verify');
        const line = renderEvent(e);
        if (line) say(line);
      },
    });
    say(renderReportText(report));
    if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    code = verdict(report, fail, say);
  } finally {
    await sandbox.stop();
  }
  return code;
}

function inject(sandbox: Sandbox, fail: string, release: string, when: 'before' | 'verify'): void {
  const fault = (host: string, file = 'FAULT', body = release) =>
    fs.writeFileSync(path.join(sandbox.hosts[host].path, file), body + '\n');
  if (when === 'before') {
    if (fail === 'staging') fault('thinkpad');
    if (fail === 'tests') fault('thinkpad', 'FAULT-TESTS');
    if (fail === 'production') fault('rtx1080');
    if (fail === 'vps') fault('vps');
  } else if (fail === 'verify') {
    fault('rtx1080');
  }
}

function verdict(report: Report, fail: string, say: (s: string) => void): number {
  const expected = EXPECTED[fail];
  const ok = report.status === expected;
  say(
    `\nFailure rule for ${fail === 'none' ? 'a clean deploy' : `a ${fail} failure`}: ${expected}. Result: ${report.status} ${ok ? '✔' : '✖'}`,
  );
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
