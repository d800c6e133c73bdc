/**
 * The benchmark's reference client: the job the product does in a redeploy, done the plain fast way with
 * ssh2 and nothing else. One connection per host (TCP_NODELAY, host key checked against known_hosts), at
 * most `concurrency` hosts at a time, every step of baseline/steps.ts sent on its own channel in order; the
 * env file is one SFTP open (mode 0600) with its write and fchmod pipelined. A host stops at its first
 * failed step, and keeps its lock, so verification catches it.
 *
 * `properties` in the job add homelab-deploy's safety properties one by one (scenario property-cost): extra
 * steps (steps.ts), every command under a remote `timeout` with a token (remote-timeout), the env file's atomic
 * swap over SFTP (atomic-env), and once every host is deployed a second pass that reconnects to each and reads
 * the release back (verify). The SFTP steps of a host share one session, opened at the first of them.
 *
 * A rollback job (`action: "rollback"`) does baseline/steps.ts rollbackSteps the same way.
 *
 * usage: node deploy.js JOB.json   (prints one BaselineResult line; exit 1 if any host failed)
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Client, utils, type SFTPWrapper } from 'ssh2';
import { PROPERTIES, type BaselineJob, type BaselineResult } from './job';
import { knownHostsName, parseKnownHosts } from './known-hosts';
import {
  commandToken,
  deploySteps,
  healthStep,
  rollbackSteps,
  underTimeout,
  type SeenOutput,
  type Step,
} from './steps';

type Host = BaselineJob['hosts'][number];
type AtomicUpload = Extract<Step, { kind: 'atomic-upload' }>;

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

/** One SFTP request as a promise; `value` is what its callback hands back after the error. */
function call<T = void>(send: (cb: (err?: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => send((err, value) => (err ? reject(err) : resolve(value as T))));
}

function upload(sftp: SFTPWrapper, path: string, data: Buffer, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    sftp.open(path, 'w', { mode }, (openErr, handle) => {
      if (openErr) return reject(openErr);
      // write and fchmod go out back to back; close waits for both answers
      let pending = 2;
      let firstError: Error | undefined;
      const settle = (e?: Error | null) => {
        if (e && !firstError) firstError = e;
        if (--pending > 0) return;
        sftp.close(handle, (closeErr) => {
          if (firstError ?? closeErr) return reject((firstError ?? closeErr) as Error);
          resolve();
        });
      };
      sftp.write(handle, data, 0, data.length, 0, settle);
      sftp.fchmod(handle, mode, settle);
    });
  });
}

/** A small file in one open; the close goes out right behind the write (sftp-server answers in order). */
async function writeFile(sftp: SFTPWrapper, path: string, data: Buffer, mode: number): Promise<void> {
  const handle = await call<Buffer>((cb) => sftp.open(path, 'w', { mode }, cb));
  await Promise.all([
    call((cb) => sftp.write(handle, data, 0, data.length, 0, cb)),
    call((cb) => sftp.close(handle, cb)),
  ]);
}

function readAt(sftp: SFTPWrapper, handle: Buffer, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  return new Promise((resolve, reject) =>
    sftp.read(handle, buf, 0, length, 0, (err, n) => (err ? reject(err) : resolve(buf.subarray(0, n)))),
  );
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Keeps the file being replaced as `saved`, by a hard link: the file itself is only ever replaced by a rename,
 * so the link goes on holding the old content, at no cost in space. A first deploy has nothing to keep; a
 * second write of the same release keeps the first copy (it is what the host had before the release).
 */
async function keepPrevious(sftp: SFTPWrapper, file: string, saved: string): Promise<void> {
  try {
    await call((cb) => sftp.ext_openssh_hardlink(file, saved, cb));
  } catch (err) {
    if ((err as { code?: unknown }).code === utils.sftp.STATUS_CODE.NO_SUCH_FILE) return;
    const kept = await call<unknown>((cb) => sftp.lstat(saved, cb)).then(
      () => true,
      () => false,
    );
    if (!kept) throw err;
  }
}

/** A directory opened read-only is a file handle to sftp-server, so fsync@openssh.com makes its renames durable. */
async function fsyncDir(sftp: SFTPWrapper, dir: string): Promise<void> {
  const handle = await call<Buffer>((cb) => sftp.open(dir, 'r', cb));
  try {
    await call((cb) => sftp.ext_openssh_fsync(handle, cb));
  } finally {
    await call((cb) => sftp.close(handle, cb));
  }
}

/**
 * atomic-env: the new file as a 0600 temp file beside the target, fsynced and read back (write, fchmod, fsync
 * and read pipelined on one handle: sftp-server answers in order), its sha256 compared here; then the old file
 * kept, the temp renamed over the target (posix-rename: atomic, unlike SFTP's plain rename) and the directory
 * fsynced. A mismatch removes the temp file and leaves the old env file in place.
 */
async function atomicUpload(sftp: SFTPWrapper, step: AtomicUpload, data: Buffer): Promise<void> {
  const handle = await call<Buffer>((cb) => sftp.open(step.tmp, 'w+', { mode: step.mode }, cb));
  let back: Buffer;
  try {
    [, , , back] = await Promise.all([
      call((cb) => sftp.write(handle, data, 0, data.length, 0, cb)),
      call((cb) => sftp.fchmod(handle, step.mode, cb)),
      call((cb) => sftp.ext_openssh_fsync(handle, cb)),
      readAt(sftp, handle, data.length + 1),
    ]);
  } finally {
    await call((cb) => sftp.close(handle, cb));
  }
  if (sha256(back) !== sha256(data)) {
    await call((cb) => sftp.unlink(step.tmp, cb));
    throw new Error(`read back ${back.length} bytes that differ from the ${data.length} written`);
  }
  await keepPrevious(sftp, step.path, step.saved);
  await call((cb) => sftp.ext_openssh_rename(step.tmp, step.path, cb));
  await fsyncDir(sftp, step.dir);
}

/** One host's connection as its steps use it: commands (wrapped under remote-timeout), one lazy SFTP session. */
class HostSession {
  private session?: Promise<SFTPWrapper>;

  constructor(
    private readonly client: Client,
    private readonly wrap: (command: string) => string,
  ) {}

  exec(command: string) {
    return exec(this.client, this.wrap(command));
  }

  sftp(): Promise<SFTPWrapper> {
    this.session ??= new Promise((resolve, reject) =>
      this.client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))),
    );
    return this.session;
  }

  async end(): Promise<void> {
    if (this.session) (await this.session.catch(() => undefined))?.end();
    this.client.end();
  }
}

async function sftpStep(session: HostSession, step: Step, env: Buffer, seen: SeenOutput): Promise<void> {
  const sftp = await session.sftp();
  if (step.kind === 'upload') return upload(sftp, step.path, env, step.mode);
  if (step.kind === 'atomic-upload') return atomicUpload(sftp, step, env);
  if (step.kind === 'write-file') {
    await writeFile(sftp, step.path, Buffer.from(step.data(seen)), step.mode);
    const to = step.renameTo;
    if (to) await call((cb) => sftp.ext_openssh_rename(step.path, to, cb));
  }
}

async function runSteps(session: HostSession, steps: Step[], env: Buffer): Promise<void> {
  const seen = new Map<string, string>();
  for (const step of steps) {
    if (step.kind !== 'exec') {
      await sftpStep(session, step, env, seen).catch((e: Error) => {
        throw new StepError(step.name, e.message);
      });
      continue;
    }
    const command = typeof step.command === 'string' ? step.command : step.command(seen);
    const r = await session.exec(command).catch((e: Error) => {
      throw new StepError(step.name, e.message);
    });
    if (r.code !== 0) throw new StepError(step.name, `exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    const bad = step.check(r.stdout, seen);
    if (bad) throw new StepError(step.name, bad);
    seen.set(step.name, r.stdout);
  }
}

/** What every host of a run shares: credentials, the env file, how its commands are sent. */
interface RunShared {
  job: BaselineJob;
  key: Buffer;
  known: Map<string, Buffer[]>;
  env: Buffer;
  /** the command as sent: as built, or under remote-timeout with the host's next token */
  wrapFor(host: Host): (command: string) => string;
}

/**
 * The token's sequence continues across a host's connections (deploy, then verify), so no two commands of one
 * run on a host carry the same token: a kill by token hits exactly the command it means.
 */
function commandWrappers(job: BaselineJob): (host: Host) => (command: string) => string {
  if (!job.properties?.includes('remote-timeout')) return () => (command) => command;
  const runToken = job.runToken as string;
  const seq = new Map<string, number>();
  return (host) => (command) => {
    const n = (seq.get(host.name) ?? 0) + 1;
    seq.set(host.name, n);
    return underTimeout(command, commandToken(runToken, n));
  };
}

async function onHost(run: RunShared, host: Host, steps: Step[]): Promise<void> {
  const session = new HostSession(await connect(run.job, host, run.key, run.known), run.wrapFor(host));
  try {
    await runSteps(session, steps, run.env);
  } finally {
    await session.end();
  }
}

function stepsOf(job: BaselineJob, host: Host): Step[] {
  if (job.action === 'rollback') return rollbackSteps(host.dir);
  return deploySteps({
    dir: host.dir,
    host: host.name,
    release: job.release,
    minFreeKib: job.minFreeKib,
    properties: job.properties ?? [],
    runToken: job.runToken ?? '',
    now: new Date().toISOString(),
  });
}

/** At most `width` hosts at a time, each to the end of `work`; a host's error goes to `failed` under its step. */
async function eachHost(
  hosts: Host[],
  width: number,
  failed: BaselineResult['failed'],
  work: (host: Host) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const host = hosts[next++];
      try {
        await work(host);
      } catch (err) {
        const step = err instanceof StepError ? err.step : 'deploy';
        failed.push({ host: host.name, step, error: (err as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, hosts.length) }, worker));
}

/** Rejects what the client would misread: an unknown property, properties without the run's token. */
function checkJob(job: BaselineJob): void {
  const unknown = (job.properties ?? []).filter((p) => !(PROPERTIES as readonly string[]).includes(p));
  if (unknown.length) throw new Error(`unknown properties: ${unknown.join(', ')}`);
  if (job.properties?.length && !job.runToken) throw new Error('properties need a runToken');
}

async function main(): Promise<number> {
  const jobFile = process.argv[2];
  if (!jobFile) {
    process.stderr.write('usage: deploy.js JOB.json\n');
    return 2;
  }
  const job = JSON.parse(fs.readFileSync(jobFile, 'utf8')) as BaselineJob;
  checkJob(job);
  const run: RunShared = {
    job,
    key: fs.readFileSync(job.privateKeyFile),
    known: parseKnownHosts(fs.readFileSync(job.knownHostsFile, 'utf8')),
    env: job.action === 'rollback' ? Buffer.alloc(0) : fs.readFileSync(job.envFile),
    wrapFor: commandWrappers(job),
  };
  const result: BaselineResult = { ok: 0, failed: [] };
  await eachHost(job.hosts, job.concurrency, result.failed, async (host) => {
    await onHost(run, host, stepsOf(job, host));
    result.ok++;
  });
  // verify: a barrier, then every deployed host again on a new connection, as the product's verify phase.
  if (job.action === 'deploy' && job.properties?.includes('verify')) {
    const reverified: string[] = [];
    const failedHosts = new Set(result.failed.map((f) => f.host));
    const deployed = job.hosts.filter((h) => !failedHosts.has(h.name));
    await eachHost(deployed, job.concurrency, result.failed, async (host) => {
      await onHost(run, host, [{ ...healthStep(host.dir, job.release), name: 'verify' }]);
      reverified.push(host.name);
    });
    result.reverified = reverified;
  }
  const line = JSON.stringify(result) + '\n';
  process.stdout.write(line);
  if (job.resultFile) fs.writeFileSync(job.resultFile, line);
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
