/**
 * The benchmark's reference client: the job the product does in a redeploy, done the plain fast way with
 * ssh2 and nothing else. One connection per host (TCP_NODELAY, host key checked against known_hosts), at
 * most `concurrency` hosts at a time, every step of baseline/steps.ts sent on its own channel in order; the
 * env file is one SFTP open (mode 0600) with its write and fchmod pipelined. A host stops at its first
 * failed step, and keeps its lock, so verification catches it.
 *
 * A rollback job (`action: "rollback"`) does baseline/steps.ts rollbackSteps the same way.
 *
 * usage: node deploy.js JOB.json   (prints one BaselineResult line; exit 1 if any host failed)
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Client, type SFTPWrapper } from 'ssh2';
import type { BaselineJob, BaselineResult } from './job';
import { knownHostsName, parseKnownHosts } from './known-hosts';
import { deploySteps, rollbackSteps } from './steps';

type Host = BaselineJob['hosts'][number];

class StepError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
  }
}

function connect(job: BaselineJob, host: Host, key: Buffer, known: Map<string, Buffer[]>): Promise<Client> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: host.address, port: host.port });
    sock.setNoDelay(true);
    const client = new Client();
    const allowed = known.get(knownHostsName(host.address, host.port)) ?? [];
    let ready = false;
    client.once('ready', () => {
      ready = true;
      resolve(client);
    });
    // After 'ready', a lost connection surfaces as the failure of the step that was running.
    client.on('error', (err) => {
      sock.destroy();
      if (!ready) reject(new StepError('connect', err.message));
    });
    client.connect({
      sock,
      username: job.user,
      privateKey: key,
      readyTimeout: job.connectTimeoutMs,
      hostVerifier: (presented: Buffer) => allowed.some((k) => k.equals(presented)),
    });
  });
}

function exec(client: Client, command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let code = -1;
      stream.on('data', (d: Buffer) => out.push(d));
      stream.stderr.on('data', (d: Buffer) => errOut.push(d));
      stream.on('exit', (c: number | null) => {
        code = c ?? -1;
      });
      stream.on('close', () =>
        resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(errOut).toString() }),
      );
    });
  });
}

function upload(client: Client, path: string, data: Buffer, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.sftp((err, sftp: SFTPWrapper) => {
      if (err) return reject(err);
      const fail = (e: Error) => {
        sftp.end();
        reject(e);
      };
      sftp.open(path, 'w', { mode }, (openErr, handle) => {
        if (openErr) return fail(openErr);
        // write and fchmod go out back to back; close waits for both answers
        let pending = 2;
        let firstError: Error | undefined;
        const settle = (e?: Error | null) => {
          if (e && !firstError) firstError = e;
          if (--pending > 0) return;
          sftp.close(handle, (closeErr) => {
            if (firstError ?? closeErr) return fail((firstError ?? closeErr) as Error);
            sftp.end();
            resolve();
          });
        };
        sftp.write(handle, data, 0, data.length, 0, settle);
        sftp.fchmod(handle, mode, settle);
      });
    });
  });
}

async function deployHost(
  job: BaselineJob,
  host: Host,
  key: Buffer,
  known: Map<string, Buffer[]>,
  env: Buffer,
) {
  const client = await connect(job, host, key, known);
  const steps =
    job.action === 'rollback' ? rollbackSteps(host.dir) : deploySteps(host.dir, job.release, job.minFreeKib);
  const seen = new Map<string, string>();
  try {
    for (const step of steps) {
      if (step.kind === 'upload') {
        await upload(client, step.path, env, step.mode).catch((e: Error) => {
          throw new StepError(step.name, e.message);
        });
        continue;
      }
      const command = typeof step.command === 'string' ? step.command : step.command(seen);
      const r = await exec(client, command).catch((e: Error) => {
        throw new StepError(step.name, e.message);
      });
      if (r.code !== 0)
        throw new StepError(step.name, `exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      const bad = step.check(r.stdout, seen);
      if (bad) throw new StepError(step.name, bad);
      seen.set(step.name, r.stdout);
    }
  } finally {
    client.end();
  }
}

async function main(): Promise<number> {
  const jobFile = process.argv[2];
  if (!jobFile) {
    process.stderr.write('usage: deploy.js JOB.json\n');
    return 2;
  }
  const job = JSON.parse(fs.readFileSync(jobFile, 'utf8')) as BaselineJob;
  const key = fs.readFileSync(job.privateKeyFile);
  const env = job.action === 'rollback' ? Buffer.alloc(0) : fs.readFileSync(job.envFile);
  const known = parseKnownHosts(fs.readFileSync(job.knownHostsFile, 'utf8'));
  const result: BaselineResult = { ok: 0, failed: [] };
  let next = 0;
  const worker = async () => {
    while (next < job.hosts.length) {
      const host = job.hosts[next++];
      try {
        await deployHost(job, host, key, known, env);
        result.ok++;
      } catch (err) {
        const step = err instanceof StepError ? err.step : 'deploy';
        result.failed.push({ host: host.name, step, error: (err as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(job.concurrency, job.hosts.length) }, worker));
  process.stdout.write(JSON.stringify(result) + '\n');
  for (const f of result.failed.slice(0, 10)) process.stderr.write(`${f.host}: ${f.step}: ${f.error}\n`);
  return result.failed.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`baseline: ${err.stack ?? err.message}\n`);
    process.exitCode = 2;
  },
);
