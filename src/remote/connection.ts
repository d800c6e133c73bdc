import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { DeployError } from '../errors';
import { algorithmsForKeyTypes, HostKeyPolicy, knownHostsName } from './known-hosts';
import { shQuote } from './quote';
import { Semaphore } from './semaphore';

export interface Endpoint {
  name: string; // host name in the config, for messages
  address: string;
  port: number;
  user: string;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCount: number;
  maxChannels: number;
}

export interface Credentials {
  privateKey: Buffer | string;
  passphrase?: string;
}

export interface ExecOptions {
  timeoutMs: number;
  stdin?: string | Buffer;
  signal?: AbortSignal;
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Remote grace after `timeout` sends TERM before it sends KILL, and local grace on top of that. */
const KILL_AFTER_S = 3;
const LOCAL_GRACE_MS = (KILL_AFTER_S + 5) * 1000;
const MAX_CAPTURE = 256 * 1024;

/**
 * One SSH connection to one host, reused by every phase of a run.
 * Every command runs under the remote `timeout` utility in its own process group and carries a token in its argv,
 * so a command that overruns or is cancelled can be killed on the host, not just abandoned by the client.
 */
export class SshConnection {
  private readonly channels: Semaphore;
  private sftpSession?: Promise<SFTPWrapper>;
  private closed = false;
  private lostError?: DeployError;
  readonly runToken: string;
  private seq = 0;

  private constructor(
    readonly endpoint: Endpoint,
    private readonly client: Client,
    runToken: string,
  ) {
    this.channels = new Semaphore(endpoint.maxChannels);
    this.runToken = runToken;
    client.on('close', () => {
      if (!this.closed) {
        this.lostError = new DeployError('unreachable', `connection to ${endpoint.name} was lost`, {
          host: endpoint.name,
        });
      }
      this.closed = true;
    });
  }

  static async connect(
    endpoint: Endpoint,
    credentials: Credentials,
    policy: HostKeyPolicy,
    opts: { via?: SshConnection; runToken?: string } = {},
  ): Promise<SshConnection> {
    const name = knownHostsName(endpoint.address, endpoint.port);
    const sock = opts.via ? await opts.via.forward(endpoint) : await openSocket(endpoint);
    const client = new Client();
    let rejected: DeployError | undefined;
    const knownTypes = policy.keyTypesFor(name);
    const config: ConnectConfig = {
      sock,
      username: endpoint.user,
      privateKey: credentials.privateKey,
      passphrase: credentials.passphrase,
      readyTimeout: endpoint.connectTimeoutMs,
      keepaliveInterval: endpoint.keepaliveIntervalMs,
      keepaliveCountMax: endpoint.keepaliveCount,
      hostVerifier: (key: Buffer) => {
        const verdict = policy.verify(name, key);
        if (verdict.ok) return true;
        const why =
          verdict.reason === 'unknown-host'
            ? `is not in ${policy.source} (no entry for ${name}); add it after checking the fingerprint out of band`
            : verdict.reason === 'revoked'
              ? `is marked @revoked in ${policy.source}`
              : `does not match ${policy.source}: expected ${verdict.expected.join(' or ')}`;
        rejected = new DeployError(
          'host-key',
          `host key of ${endpoint.name} (${name}) ${verdict.fingerprint} ${why}`,
          {
            host: endpoint.name,
          },
        );
        return false;
      },
    };
    if (knownTypes.length > 0)
      config.algorithms = { serverHostKey: algorithmsForKeyTypes(knownTypes) as never };
    return new Promise<SshConnection>((resolve, reject) => {
      const fail = (err: Error & { level?: string; code?: string }) => {
        client.removeAllListeners('ready');
        client.on('error', () => undefined);
        client.end();
        sock.destroy();
        reject(rejected ?? classifyConnectError(err, endpoint));
      };
      client.once('error', fail);
      client.once('ready', () => {
        client.removeListener('error', fail);
        // ssh2 can emit ECONNRESET after a clean close; an unhandled 'error' would crash the process.
        client.on('error', () => undefined);
        resolve(new SshConnection(endpoint, client, opts.runToken ?? randomBytes(6).toString('hex')));
      });
      client.connect(config);
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Opens a TCP stream from this host to another (ProxyJump). */
  forward(target: Endpoint): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      this.client.forwardOut('127.0.0.1', 0, target.address, target.port, (err, stream) => {
        if (err) {
          reject(
            new DeployError(
              'unreachable',
              `jump host ${this.endpoint.name} cannot reach ${target.name} (${target.address}:${target.port}): ${err.message}`,
              {
                host: target.name,
              },
            ),
          );
        } else resolve(stream as unknown as net.Socket);
      });
    });
  }

  private ensureOpen(): void {
    if (this.closed)
      throw (
        this.lostError ??
        new DeployError('unreachable', `connection to ${this.endpoint.name} is closed`, {
          host: this.endpoint.name,
        })
      );
  }

  /**
   * Runs a shell script on the host. Resolves with the exit code for any exit; rejects only when the command
   * could not run to an exit: timeout, lost connection, cancellation.
   */
  async exec(script: string, opts: ExecOptions): Promise<ExecResult> {
    this.ensureOpen();
    const token = `hd-${this.runToken}-${++this.seq}`;
    const seconds = Math.max(1, Math.ceil(opts.timeoutMs / 1000));
    // `exec timeout` keeps the login shell out of the way; timeout puts the command in its own process group
    // and signals the whole group, so children started by the script die with it.
    const command = `exec timeout -k ${KILL_AFTER_S} ${seconds} sh -c ${shQuote(script)} ${token}`;
    return this.channels.run(
      () =>
        new Promise<ExecResult>((resolve, reject) => {
          const started = Date.now();
          let stdout = '';
          let stderr = '';
          let settled = false;
          let channel: ClientChannel | undefined;
          const finish = (fn: () => void) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            opts.signal?.removeEventListener('abort', onAbort);
            fn();
          };
          const abandon = (err: DeployError) => {
            finish(() => reject(err));
            channel?.close();
            void this.kill(token);
          };
          const timer = setTimeout(
            () =>
              abandon(
                new DeployError(
                  'timeout',
                  `command on ${this.endpoint.name} did not finish within ${seconds}s`,
                  {
                    host: this.endpoint.name,
                  },
                ),
              ),
            opts.timeoutMs + LOCAL_GRACE_MS,
          );
          const onAbort = () =>
            abandon(
              new DeployError('cancelled', `command on ${this.endpoint.name} was cancelled`, {
                host: this.endpoint.name,
              }),
            );
          if (opts.signal?.aborted) return onAbort();
          opts.signal?.addEventListener('abort', onAbort, { once: true });
          this.client.exec(command, (err, ch) => {
            if (err) {
              return finish(() =>
                reject(
                  new DeployError(
                    'unreachable',
                    `cannot open a channel on ${this.endpoint.name}: ${err.message}`,
                    { host: this.endpoint.name },
                  ),
                ),
              );
            }
            channel = ch;
            if (settled) return ch.close();
            ch.on('data', (d: Buffer) => (stdout = capTail(stdout + d.toString('utf8'))));
            ch.stderr.on('data', (d: Buffer) => (stderr = capTail(stderr + d.toString('utf8'))));
            ch.on('error', () => undefined);
            ch.on('exit', () => undefined);
            ch.on('close', (code: number | null, signal?: string) => {
              const durationMs = Date.now() - started;
              if (code === 124 || (code === 137 && durationMs >= opts.timeoutMs)) {
                return finish(() =>
                  reject(
                    new DeployError(
                      'timeout',
                      `command on ${this.endpoint.name} exceeded its ${seconds}s limit and was killed`,
                      {
                        host: this.endpoint.name,
                      },
                    ),
                  ),
                );
              }
              if ((code === undefined || code === null) && !signal) {
                // No exit status: either the server dropped the channel or the connection died; the client's
                // 'close' may arrive a tick later, so look again before deciding which.
                return setImmediate(() =>
                  finish(() =>
                    this.closed
                      ? reject(
                          this.lostError ??
                            new DeployError('unreachable', `connection to ${this.endpoint.name} was lost`, {
                              host: this.endpoint.name,
                            }),
                        )
                      : resolve({ code: null, stdout, stderr, durationMs }),
                  ),
                );
              }
              finish(() => resolve({ code: code ?? null, signal, stdout, stderr, durationMs }));
            });
            if (opts.stdin !== undefined) ch.end(opts.stdin);
            else ch.end();
          });
        }),
    );
  }

  /** Kills the process groups of commands this run started on the host (one, or all of them). */
  async kill(token?: string): Promise<void> {
    if (this.closed) return;
    const pattern = token ?? `hd-${this.runToken}-`;
    // The bracket keeps pkill's own shell from matching the pattern it is given.
    const expr = `[${pattern[0]}]${pattern.slice(1)}`;
    await new Promise<void>((resolve) => {
      this.client.exec(
        `pkill -TERM -f ${shQuote(expr)}; sleep 1; pkill -KILL -f ${shQuote(expr)}; true`,
        (err, ch) => {
          if (err) return resolve();
          ch.on('error', () => undefined);
          ch.on('close', () => resolve());
          ch.resume();
          ch.stderr.resume();
          ch.end();
        },
      );
      setTimeout(resolve, 4000).unref();
    });
  }

  /** A lazily opened SFTP session; it holds one channel for the life of the connection. */
  sftp(): Promise<SFTPWrapper> {
    this.ensureOpen();
    if (!this.sftpSession) {
      this.sftpSession = (async () => {
        await this.channels.acquire(); // held until close: OpenSSH counts the SFTP channel against MaxSessions
        return new Promise<SFTPWrapper>((resolve, reject) => {
          this.client.sftp((err, sftp) => {
            if (err)
              reject(
                new DeployError(
                  'precondition',
                  `cannot start SFTP on ${this.endpoint.name}: ${err.message}`,
                  { host: this.endpoint.name },
                ),
              );
            else {
              sftp.on('error', () => undefined);
              resolve(sftp);
            }
          });
        });
      })();
      this.sftpSession.catch(() => (this.sftpSession = undefined));
    }
    return this.sftpSession;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.end();
  }
}

function capTail(s: string): string {
  return s.length > MAX_CAPTURE ? s.slice(s.length - MAX_CAPTURE) : s;
}

function openSocket(endpoint: Endpoint): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: endpoint.address, port: endpoint.port });
    sock.setNoDelay(true); // Nagle adds ~40 ms to every small request/response round trip
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new DeployError(
          'timeout',
          `connecting to ${endpoint.name} (${endpoint.address}:${endpoint.port}) timed out after ${endpoint.connectTimeoutMs / 1000}s`,
          {
            host: endpoint.name,
          },
        ),
      );
    }, endpoint.connectTimeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new DeployError(
          'unreachable',
          `cannot connect to ${endpoint.name} (${endpoint.address}:${endpoint.port}): ${err.code ?? err.message}`,
          {
            host: endpoint.name,
          },
        ),
      );
    });
  });
}

function classifyConnectError(
  err: Error & { level?: string; code?: string },
  endpoint: Endpoint,
): DeployError {
  const host = endpoint.name;
  if (err.level === 'client-authentication') {
    return new DeployError(
      'auth',
      `authentication as "${endpoint.user}" on ${host} failed: the server accepted none of our keys`,
      { host },
    );
  }
  if (err.level === 'client-timeout') {
    return new DeployError(
      'timeout',
      `SSH handshake with ${host} timed out after ${endpoint.connectTimeoutMs / 1000}s`,
      { host },
    );
  }
  if (/passphrase|encrypted|private key/i.test(err.message)) {
    return new DeployError('auth', `cannot use the private key for ${host}: ${err.message}`, { host });
  }
  return new DeployError('unreachable', `SSH connection to ${host} failed: ${err.code ?? err.message}`, {
    host,
  });
}
