import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { DeployError } from '../errors';
import {
  hostKeyAlgorithmsFor,
  HostKeyPolicy,
  keyTypeOf,
  knownHostsName,
  type HostKeyVerdict,
} from './known-hosts';
import { shQuote } from './quote';
import { Semaphore } from '../util/concurrency';
import type { ExecOptions, ExecResult } from '../util/shell';

export interface Endpoint {
  name: string; // host name in the config, for messages
  address: string;
  port: number;
  user: string;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCount: number;
  /** Channels open at once on this connection, kill channel included; keep it below the server's MaxSessions. */
  maxChannels: number;
  /** Limit for a command whose caller gives none (the host's `ssh.command_timeout`). */
  commandTimeoutMs?: number;
}

export interface Credentials {
  privateKey: Buffer | string;
  passphrase?: string;
}

export type { ExecOptions, ExecResult } from '../util/shell';

export interface SshExecOptions extends ExecOptions {
  /** Each chunk of stdout as it arrives (runSteps times its steps by it); stdout is still collected as usual. */
  onStdout?: (data: Buffer) => void;
}

/** Same as DEFAULTS.commandTimeoutMs in config/resolve.ts; endpoints built from a config always carry their own. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10 * 60_000;

/** Remote grace after `timeout` sends TERM before it sends KILL, and local grace on top of that. */
const KILL_AFTER_S = 3;
const LOCAL_GRACE_MS = (KILL_AFTER_S + 5) * 1000;
const MAX_CAPTURE = 256 * 1024;
/** How long kill() keeps its caller waiting: the first TERM is out by then; the rest runs on the host alone. */
const KILL_SENT_WAIT_MS = 3000;
/** Upper bound for holding a slot for a kill script that never reports back (hung host). */
const KILL_HOLD_CAP_MS = (KILL_AFTER_S + 8) * 1000;

/** Which connection opened an SFTP session, so code holding only the session can drop it (sftp.ts on a stall). */
const sftpOwners = new WeakMap<SFTPWrapper, SshConnection>();

/** Closes a stalled SFTP session and makes its connection open a fresh one next time (see SshConnection.discardSftp). */
export function discardSftp(sftp: SFTPWrapper): void {
  const owner = sftpOwners.get(sftp);
  if (owner) owner.discardSftp(sftp);
  else {
    try {
      sftp.end();
    } catch {
      /* already closed */
    }
  }
}

/** Marks one SFTP request as in flight on the session's connection; call the result when it is answered. */
export function trackSftpRequest(sftp: SFTPWrapper): () => void {
  return sftpOwners.get(sftp)?.beginSftpRequest() ?? (() => undefined);
}

/** Run tokens end up in remote argv and in pkill patterns; keep them to characters that need no care in either. */
const RUN_TOKEN_RE = /^[A-Za-z0-9_.-]{1,64}$/;

interface KillRequest {
  token?: string; // undefined: every command of this run
  sent: () => void; // the first TERM went out (or nothing is left to do)
  finished: () => void; // the kill script ended: the killed sessions are gone from the server
}

/**
 * One SSH connection to one host, reused by every phase of a run.
 * Every command runs under the remote `timeout` utility in its own process group and carries a token as its last
 * argv word, so a command that overruns or is cancelled can be killed on the host, not just abandoned.
 *
 * Channel budget: OpenSSH counts every open session (exec and SFTP) against MaxSessions, and it keeps a session
 * whose channel we closed until its process exits. So `maxChannels - 1` slots serve commands and SFTP, and one is
 * reserved for the kill channel: a kill never waits behind the commands it has to stop, and the total never passes
 * `maxChannels`. Kills requested while one runs are batched into the next kill script. A command we abandon keeps
 * its slot until the kill that covers it has finished, because until then its session still exists on the server.
 */
export class SshConnection {
  private readonly channels: Semaphore;
  private sftpSession?: Promise<SFTPWrapper>;
  private closed = false;
  private lostError?: DeployError;
  readonly runToken: string;
  private pendingKills: KillRequest[] = [];
  /** How to give back the slot of each open SFTP session, for discardSftp(). */
  private readonly sftpDrops = new WeakMap<SFTPWrapper, () => void>();
  private killing = false;
  /** Commands and SFTP requests in progress (an abandoned command counts until the kill covering it is done). */
  private busy = 0;
  /** Callers waiting for the connection to have no command, SFTP session or kill in progress (see idle()). */
  private idleWaiters: (() => void)[] = [];
  private readonly sequence: { value: number };
  /** What the handshake agreed on (key exchange, host key type, ciphers), for diagnostics. */
  negotiated?: Record<string, unknown>;

  /** Settles when the TCP connection (or the jump host's channel) is really closed, not just said goodbye to. */
  private readonly socketGone: Promise<void>;

  private constructor(
    readonly endpoint: Endpoint,
    private readonly client: Client,
    runToken: string,
    sequence: { value: number } | undefined,
    private readonly sock: net.Socket,
  ) {
    this.socketGone = new Promise((resolve) => {
      if (sock.destroyed) resolve();
      else sock.once('close', () => resolve());
    });
    this.sequence = sequence ?? { value: 0 };
    // With a budget of one there is no room for a reserved kill slot; the kill then takes a second session.
    this.channels = new Semaphore(Math.max(1, endpoint.maxChannels - 1));
    this.runToken = runToken;
    client.on('close', () => {
      if (!this.closed) {
        this.lostError = new DeployError('unreachable', `connection to ${endpoint.name} was lost`, {
          host: endpoint.name,
        });
      }
      this.closed = true;
      this.flushKills();
      this.wakeIdle();
    });
  }

  static async connect(
    endpoint: Endpoint,
    credentials: Credentials,
    policy: HostKeyPolicy,
    /**
     * `sequence` numbers the commands' tokens; connections of one run share one, so a token names one command
     * of the run even across reconnections (a kill by token never reaches a later command with the same number).
     */
    opts: { via?: SshConnection; runToken?: string; sequence?: { value: number } } = {},
  ): Promise<SshConnection> {
    const name = knownHostsName(endpoint.address, endpoint.port);
    if (policy.isEmpty) {
      // Nothing to verify against would mean trusting whatever key the server shows: refuse before connecting.
      throw new DeployError(
        'host-key',
        `no trusted host key for ${endpoint.name} (${name}): ${policy.source} has no entries and no fingerprints are pinned`,
        { host: endpoint.name },
      );
    }
    const runToken = opts.runToken ?? randomBytes(6).toString('hex');
    if (!RUN_TOKEN_RE.test(runToken))
      throw new DeployError('internal', `run token must match ${RUN_TOKEN_RE.source}`, {
        host: endpoint.name,
      });
    const sock = opts.via ? await opts.via.forward(endpoint) : await openSocket(endpoint);
    const client = new Client();
    let rejected: DeployError | undefined;
    const knownTypes = policy.keyTypesFor(name);
    // The server's host key types, from its KEXINIT as ssh2's handshake log reports it; only read until the
    // handshake is done, so the log costs no more than a test per packet after that.
    let offered: string[] | undefined;
    let handshaking = true;
    const config: ConnectConfig = {
      sock,
      username: endpoint.user,
      privateKey: credentials.privateKey,
      passphrase: credentials.passphrase,
      readyTimeout: endpoint.connectTimeoutMs,
      keepaliveInterval: endpoint.keepaliveIntervalMs,
      keepaliveCountMax: endpoint.keepaliveCount,
      // Key exchange and ciphers stay ssh2's defaults: curve25519-sha256 and aes128-gcm@openssh.com, both done
      // by Node's own crypto, which is what it agrees on with OpenSSH 9 (with or without its native binding).
      algorithms: { serverHostKey: hostKeyAlgorithmsFor(knownTypes) as never },
      debug: (msg: string) => {
        if (handshaking && msg.startsWith(REMOTE_HOST_KEY_LOG))
          offered = msg.slice(REMOTE_HOST_KEY_LOG.length).split(',').filter(Boolean);
      },
      hostVerifier: (key: Buffer) => {
        const verdict = policy.verify(name, key);
        if (verdict.ok) return true;
        rejected = hostKeyRefusal(endpoint, name, policy, verdict, key, offered);
        return false;
      },
    };
    return new Promise<SshConnection>((resolve, reject) => {
      const fail = (err: Error & { level?: string; code?: string }) => {
        client.removeAllListeners('ready');
        client.on('error', () => undefined);
        client.end();
        sock.destroy();
        reject(rejected ?? classifyConnectError(err, endpoint, { name, policy, offered }));
      };
      let negotiated: Record<string, unknown> | undefined;
      client.once('handshake', (n: unknown) => {
        handshaking = false;
        negotiated = n as Record<string, unknown>;
      });
      client.once('error', fail);
      client.once('ready', () => {
        client.removeListener('error', fail);
        // ssh2 can emit ECONNRESET after a clean close; an unhandled 'error' would crash the process.
        client.on('error', () => undefined);
        const conn = new SshConnection(endpoint, client, runToken, opts.sequence, sock);
        conn.negotiated = negotiated;
        resolve(conn);
      });
      try {
        client.connect(config);
      } catch (err) {
        fail(err as Error); // a config ssh2 refuses (it throws before connecting)
      }
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Command and SFTP slots in use (the reserved kill slot is not counted); for tests and diagnostics. */
  get channelsInUse(): number {
    return this.channels.inUse;
  }

  /**
   * Resolves once no command, kill or SFTP request of ours is in progress on this connection (at once if none
   * is), so a caller can close it without cutting work short. An open but unused SFTP session does not count.
   */
  idle(): Promise<void> {
    if (this.closed || (this.busy === 0 && !this.killing)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Counts one piece of work until the returned function is called (once; later calls do nothing). */
  private track(release: () => void): () => void {
    this.busy++;
    let done = false;
    return () => {
      release();
      if (done) return;
      done = true;
      this.busy--;
      this.wakeIdle();
    };
  }

  /** An SFTP request in flight counts as work (sftp.ts reports each one through trackSftpRequest). */
  beginSftpRequest(): () => void {
    return this.track(() => undefined);
  }

  private wakeIdle(): void {
    if (!this.closed && (this.busy > 0 || this.killing)) return;
    for (const w of this.idleWaiters.splice(0)) w();
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

  private cancelled(what: string): DeployError {
    return new DeployError('cancelled', `${what} on ${this.endpoint.name} was cancelled`, {
      host: this.endpoint.name,
    });
  }

  /**
   * Runs a shell script on the host. Resolves with the exit code for any exit; rejects only when the command
   * could not run to an exit: timeout, lost connection, cancellation.
   */
  async exec(script: string, opts: SshExecOptions = {}): Promise<ExecResult> {
    this.ensureOpen();
    const timeoutMs = opts.timeoutMs ?? this.endpoint.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const token = `hd-${this.runToken}-${++this.sequence.value}`;
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    // `exec timeout` keeps the login shell out of the way; timeout puts the command in its own process group
    // and signals the whole group, so children started by the script die with it. The token is the last argv
    // word of both `timeout` and `sh`, which is what kill() matches on.
    const command = `exec timeout -k ${KILL_AFTER_S} ${seconds} sh -c ${shQuote(script)} ${token}`;
    let release: () => void;
    try {
      release = this.track(await this.channels.acquire({ signal: opts.signal }));
    } catch {
      throw this.cancelled('command'); // cancelled while queued: nothing was started
    }
    return new Promise<ExecResult>((resolve, reject) => {
      const started = Date.now();
      let stdout = '';
      let stderr = '';
      let settled = false;
      let keepSlot = false;
      let markOpened: (ch: ClientChannel | undefined) => void = () => undefined;
      const opened = new Promise<ClientChannel | undefined>((r) => (markOpened = r));
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (!keepSlot) release();
        fn();
      };
      const abandon = (err: DeployError) => {
        if (settled) return;
        keepSlot = true;
        finish(() => reject(err));
        // Kill only once the exec request was answered: a kill sent earlier could miss a process about to start.
        // Until the kill is done the session still counts on the server, so the slot stays taken until then.
        const capped = new Promise<undefined>((r) =>
          setTimeout(r, this.endpoint.connectTimeoutMs, undefined).unref(),
        );
        void Promise.race([opened, capped])
          .then(async (ch) => {
            ch?.close();
            if (ch) await this.requestKill(token).finished;
          })
          .finally(release);
      };
      const timer = setTimeout(
        () =>
          abandon(
            new DeployError('timeout', `command on ${this.endpoint.name} did not finish within ${seconds}s`, {
              host: this.endpoint.name,
            }),
          ),
        timeoutMs + LOCAL_GRACE_MS,
      );
      const onAbort = () => abandon(this.cancelled('command'));
      if (opts.signal?.aborted) {
        markOpened(undefined);
        return onAbort();
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const cannotOpen = (err: Error) => {
        markOpened(undefined);
        finish(() =>
          reject(
            this.closed && this.lostError
              ? this.lostError
              : new DeployError(
                  'unreachable',
                  `cannot open a channel on ${this.endpoint.name}: ${err.message}`,
                  {
                    host: this.endpoint.name,
                  },
                ),
          ),
        );
      };
      const onChannel = (err: Error | undefined, ch: ClientChannel) => {
        if (err) return cannotOpen(err);
        markOpened(ch);
        if (settled) return; // abandoned meanwhile: the abandon path closes it and kills the command
        // A multi-byte character may be split between two chunks; the decoders join it again.
        const outText = new StringDecoder('utf8');
        const errText = new StringDecoder('utf8');
        const onStdout = opts.onStdout;
        ch.on('data', (d: Buffer) => {
          stdout = capTail(stdout + outText.write(d));
          if (onStdout) onStdout(d);
        });
        ch.stderr.on('data', (d: Buffer) => (stderr = capTail(stderr + errText.write(d))));
        ch.on('error', () => undefined);
        ch.on('exit', () => undefined);
        ch.on('close', (code: number | null, signal?: string) => {
          stdout = capTail(stdout + outText.end());
          stderr = capTail(stderr + errText.end());
          const durationMs = Date.now() - started;
          if (code === 124 || (code === 137 && durationMs >= timeoutMs)) {
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
      };
      try {
        this.client.exec(command, onChannel);
      } catch (err) {
        cannotOpen(err as Error); // ssh2 throws when the connection closed while this command waited for a slot
      }
    });
  }

  /**
   * Kills the process groups of commands this run started on the host: the one with `token`, or all of them.
   * Resolves once the first TERM is out (at most a few seconds); the escalation to KILL runs on in the background.
   */
  async kill(token?: string): Promise<void> {
    if (this.closed) return;
    await this.requestKill(token).sentPromise;
  }

  /**
   * Kills every command of this run on the host and resolves only once the kill script has ended (its later rounds
   * would otherwise also hit commands started after this call), so what comes next runs alone.
   */
  async killAndWait(): Promise<void> {
    if (this.closed) return;
    await this.requestKill().finished;
  }

  private requestKill(token?: string): { sentPromise: Promise<void>; finished: Promise<void> } {
    let sent!: () => void;
    let finished!: () => void;
    const sentPromise = new Promise<void>((r) => (sent = r));
    const finishedPromise = new Promise<void>((r) => (finished = r));
    const req: KillRequest = {
      token,
      sent: () => sent(),
      finished: () => {
        sent();
        finished();
      },
    };
    if (this.closed) req.finished();
    else {
      this.pendingKills.push(req);
      if (!this.killing) {
        this.killing = true;
        // Start on the next turn, so the commands one abort cancels all go into one kill script.
        setImmediate(() => void this.runKills());
      }
    }
    return { sentPromise, finished: finishedPromise };
  }

  /** One kill script at a time, on the reserved slot; requests that arrive meanwhile share the next one. */
  private async runKills(): Promise<void> {
    for (;;) {
      const batch = this.pendingKills.splice(0);
      if (batch.length === 0 || this.closed) {
        for (const r of batch) r.finished();
        this.killing = false;
        this.wakeIdle();
        return;
      }
      await this.killBatch(batch);
    }
  }

  private killBatch(batch: KillRequest[]): Promise<void> {
    const pattern = killPattern(
      this.runToken,
      batch.some((r) => r.token === undefined) ? undefined : batch.map((r) => r.token as string),
    );
    // Matching command lines are the roots; every process below them goes too, because a command may start its own
    // process group or session (a nested `timeout`, setsid) that the group signal of our `timeout` never reaches.
    // The set is taken before the first signal, since children whose parents died are no longer below a root.
    // TERM first; a second round after 1 s also catches a command whose shell had not started at the first; what
    // still lives after timeout's own kill-after gets KILL. When nothing is left the script ends early.
    const script = [
      `p=${shQuote(pattern)}`,
      `t() { r=$(pgrep -f "$p" | tr '\\n' ' '); [ -n "$r" ] || return 0; ps -A -o pid= -o ppid= 2>/dev/null | awk -v r="$r" ${shQuote(DESCENDANTS_AWK)}; }`,
      // Zombies count as gone: on a host whose init does not reap, they would otherwise stay "alive" forever.
      `alive() { ps -A -o pid= -o stat= 2>/dev/null | awk -v s="$1" ${shQuote(ALIVE_AWK)}; }`,
      's=$(t); [ -z "$s" ] || kill -TERM $s 2>/dev/null',
      'echo sent',
      'sleep 1',
      's=$(alive "$s $(t)"); [ -n "$s" ] || exit 0',
      'kill -TERM $s 2>/dev/null',
      `sleep ${KILL_AFTER_S + 1}`,
      's=$(alive "$s $(t)"); [ -z "$s" ] || kill -KILL $s 2>/dev/null',
      'true',
    ].join('\n');
    return new Promise<void>((resolve) => {
      let done = false;
      const end = () => {
        if (done) return;
        done = true;
        clearTimeout(sentTimer);
        clearTimeout(capTimer);
        for (const r of batch) r.finished();
        resolve();
      };
      const sentTimer = setTimeout(() => batch.forEach((r) => r.sent()), KILL_SENT_WAIT_MS);
      const capTimer = setTimeout(end, KILL_HOLD_CAP_MS);
      sentTimer.unref();
      capTimer.unref();
      try {
        this.client.exec(script, (err, ch) => {
          if (err) return end();
          ch.on('error', () => undefined);
          ch.on('data', (d: Buffer) => {
            if (d.toString().includes('sent')) batch.forEach((r) => r.sent());
          });
          ch.on('close', end);
          ch.stderr.resume();
          ch.end();
        });
      } catch {
        end(); // the connection went away between the check and the request
      }
    });
  }

  private flushKills(): void {
    for (const r of this.pendingKills.splice(0)) r.finished();
  }

  /**
   * A lazily opened SFTP session; it holds one command slot while open, because OpenSSH counts it against
   * MaxSessions. A session that stalls is dropped with discardSftp() and the next call opens a fresh one.
   */
  sftp(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<SFTPWrapper> {
    this.ensureOpen();
    if (!this.sftpSession) {
      // Starting a session counts as work (idle() waits for it); an open session that waits for use does not.
      const starting = this.track(() => undefined);
      const session = (async () => {
        let release: () => void;
        try {
          release = await this.channels.acquire({ signal: opts.signal });
        } catch {
          throw this.cancelled('starting SFTP');
        }
        const limit = opts.timeoutMs ?? this.endpoint.connectTimeoutMs;
        return new Promise<SFTPWrapper>((resolve, reject) => {
          let answered = false;
          const timer = setTimeout(() => {
            answered = true;
            release();
            reject(
              new DeployError(
                'timeout',
                `starting SFTP on ${this.endpoint.name} timed out after ${Math.round(limit / 1000)}s`,
                { host: this.endpoint.name },
              ),
            );
          }, limit);
          const onSftp = (err: Error | undefined, sftp: SFTPWrapper) => {
            clearTimeout(timer);
            if (answered) {
              sftp?.end();
              return;
            }
            if (err) {
              release();
              reject(
                new DeployError(
                  'precondition',
                  `cannot start SFTP on ${this.endpoint.name}: ${err.message}`,
                  {
                    host: this.endpoint.name,
                  },
                ),
              );
            } else {
              const drop = () => {
                release();
                if (this.sftpSession === session) this.sftpSession = undefined;
              };
              this.sftpDrops.set(sftp, drop);
              sftpOwners.set(sftp, this);
              sftp.on('error', () => undefined);
              sftp.once('close', drop);
              resolve(sftp);
            }
          };
          try {
            this.client.sftp(onSftp);
          } catch (err) {
            onSftp(err as Error, undefined as unknown as SFTPWrapper); // the connection closed meanwhile
          }
        });
      })();
      this.sftpSession = session;
      session.then(starting, () => {
        starting();
        if (this.sftpSession === session) this.sftpSession = undefined;
      });
    }
    return this.sftpSession;
  }

  /**
   * Drops an SFTP session that stopped answering: closes its channel and forgets it, so later transfers start a
   * new one instead of queueing behind the stalled requests. The slot is freed when the server confirms the close,
   * or after a grace period if it never does (then the connection itself is likely gone).
   */
  discardSftp(sftp: SFTPWrapper): void {
    const drop = this.sftpDrops.get(sftp);
    const current = this.sftpSession;
    void current
      ?.then((s) => {
        if (s === sftp && this.sftpSession === current) this.sftpSession = undefined;
      })
      .catch(() => undefined);
    try {
      sftp.end();
    } catch {
      /* already closed */
    }
    if (drop) setTimeout(drop, LOCAL_GRACE_MS).unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flushKills();
    this.wakeIdle();
    this.client.end();
  }

  /**
   * Closes and waits until the socket is gone: the server's side of the goodbye can take a while on a busy host,
   * and a fleet that moved on at once would hold more connections than its concurrency. A server that does not
   * answer within `graceMs` gets the socket destroyed.
   */
  async closeAndWait(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.close();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    try {
      if ((await Promise.race([this.socketGone, late])) === 'late') this.sock.destroy();
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Prints the pids in `r` (space-separated) and all their descendants, from `ps -o pid= -o ppid=` lines. */
const DESCENDANTS_AWK =
  'BEGIN { n = split(r, a, " "); for (i = 1; i <= n; i++) k[a[i]] = 1 } { p[$1] = $2 } ' +
  'END { do { c = 0; for (x in p) if (!(x in k) && (p[x] in k)) { k[x] = 1; c = 1 } } while (c); for (x in k) print x }';

/** Prints those pids of `s` (space-separated) that still run, from `ps -o pid= -o stat=` lines. */
const ALIVE_AWK =
  'BEGIN { n = split(s, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1 } ($1 in w) && $2 !~ /^Z/ { printf "%s ", $1 }';

/** POSIX ERE for pkill -f: a token as the final argv word, never a prefix of a longer token (hd-x-1 vs hd-x-10). */
export function killPattern(runToken: string, tokens?: string[]): string {
  // The bracket keeps the kill script's own command line, which contains the pattern, from matching it.
  const bracket = (t: string) => `[${escapeEre(t[0])}]${escapeEre(t.slice(1))}`;
  const alts = tokens ? tokens.map(bracket) : [`${bracket(`hd-${runToken}-`)}[0-9]+`];
  return ` (${alts.join('|')})$`;
}

function escapeEre(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

function capTail(s: string): string {
  return s.length > MAX_CAPTURE ? s.slice(s.length - MAX_CAPTURE) : s;
}

/** How long a closed connection's socket may take to go away before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

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

/** ssh2's handshake log line that lists the server's host key types (from its KEXINIT). */
const REMOTE_HOST_KEY_LOG = 'Handshake: (remote) Host key format: ';

/** A host key the policy does not trust, said the way an operator can act on it. */
function hostKeyRefusal(
  endpoint: Endpoint,
  name: string,
  policy: HostKeyPolicy,
  verdict: Exclude<HostKeyVerdict, { ok: true }>,
  key: Buffer,
  offered: string[] | undefined,
): DeployError {
  const type = keyTypeOf(key);
  const shown = `${type} ${verdict.fingerprint}`;
  const host = endpoint.name;
  if (verdict.reason === 'revoked')
    return new DeployError(
      'host-key',
      `host key of ${host} (${name}) ${shown} is marked @revoked in ${policy.source}`,
      {
        host,
      },
    );
  if (verdict.reason === 'unknown-host')
    return new DeployError(
      'host-key',
      `host key of ${host} (${name}) ${verdict.fingerprint} is not in ${policy.source} (no entry for ${name}); add it after checking the fingerprint out of band`,
      { host },
    );
  const knownTypes = policy.keyTypesFor(name);
  if (knownTypes.length > 0 && !knownTypes.some((t) => keyTypeMatches(t, type))) {
    // We asked for the types we hold first, so the server has none of them: a key type mismatch, not a changed key.
    return new DeployError(
      'host-key',
      `host key type mismatch for ${host} (${name}): ${policy.source} holds only ${knownTypes.join(', ')} for it (expected ${verdict.expected.join(' or ')}), but the server offers ${offeredText(offered, type)} and showed ${shown}; add the server's ${type} key to ${policy.source} (or pin its fingerprint) after checking it out of band`,
      { host },
    );
  }
  return new DeployError(
    'host-key',
    `host key of ${host} (${name}) ${verdict.fingerprint} does not match ${policy.source}: expected ${verdict.expected.join(' or ')}`,
    { host },
  );
}

/** known_hosts names RSA keys `ssh-rsa` whatever signature algorithm the handshake agrees on. */
function keyTypeMatches(knownType: string, presented: string): boolean {
  return knownType === presented || (knownType === 'ssh-rsa' && /^rsa-sha2-|^ssh-rsa$/.test(presented));
}

function offeredText(offered: string[] | undefined, fallback?: string): string {
  if (offered && offered.length > 0) return `only ${offered.join(', ')}`;
  return fallback ? fallback : 'no host key type we could read';
}

/** Handshakes that began (the TCP connection was made) but did not finish in time. */
const handshakeTimeouts = new WeakSet<Error>();

/**
 * The host answered on its port but the SSH handshake did not finish within connect_timeout: on a lossy link a
 * few lost packets of the key exchange do that (each costs a TCP retransmission timeout, 1 s and more before the
 * connection has a measured round trip), so one more attempt is worth it, unlike a refused or silent port.
 */
export function isHandshakeTimeout(err: unknown): boolean {
  return err instanceof Error && handshakeTimeouts.has(err);
}

function classifyConnectError(
  err: Error & { level?: string; code?: string },
  endpoint: Endpoint,
  hostKey: { name: string; policy: HostKeyPolicy; offered?: string[] },
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
    const e = new DeployError(
      'timeout',
      `SSH handshake with ${host} timed out after ${endpoint.connectTimeoutMs / 1000}s`,
      { host },
    );
    handshakeTimeouts.add(e);
    return e;
  }
  if (/no matching host key format/i.test(err.message)) {
    // We offer every host key type ssh2 can check, so the server's keys are all of types it cannot (e.g. only
    // certificates or security keys): nothing it can show could be verified. Retrying will not change that.
    const { name, policy, offered } = hostKey;
    const expected = policy.expectedFor(name);
    return new DeployError(
      'host-key',
      `host key type mismatch for ${host} (${name}): the server offers ${offeredText(offered)}, none of which can be verified here${expected.length ? `; expected ${expected.join(' or ')} from ${policy.source}` : ''}`,
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
