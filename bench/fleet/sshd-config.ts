/** What the benchmark's sshd needs to know; every path is absolute. */
export interface SshdSettings {
  port: number;
  hostKey: string;
  authorizedKeys: string;
  user: string;
  /** HOME of every session: an empty folder, so no shell profile of this machine is read per command. */
  home: string;
  /** Concurrent unauthenticated connections allowed (the fleet's size plus room). */
  maxStartups: number;
  maxSessions: number;
  sftpServer: string;
}

/**
 * One sshd serves the whole fleet. OpenSSH accepts at most 16 ListenAddress sockets, so it binds the
 * wildcard address pinned to the loopback device (`rdomain lo`, i.e. SO_BINDTODEVICE): every 127.0.0.0/8
 * address answers, and nothing reachable from another machine does. StrictModes is off because the keys
 * live under the world-writable temp folder.
 */
export function renderSshdConfig(s: SshdSettings): string {
  return [
    '# the homelab-deploy benchmark: a dedicated sshd for a loopback fleet (not the system sshd)',
    `ListenAddress 0.0.0.0:${s.port} rdomain lo`,
    `HostKey ${s.hostKey}`,
    'PidFile none',
    `AuthorizedKeysFile ${s.authorizedKeys}`,
    `AllowUsers ${s.user}@127.0.0.0/8`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'UseDNS no',
    'StrictModes no',
    'PrintMotd no',
    'PrintLastLog no',
    'X11Forwarding no',
    'AllowTcpForwarding no',
    'AllowAgentForwarding no',
    'PermitUserEnvironment no',
    `MaxStartups ${s.maxStartups}`,
    `MaxSessions ${s.maxSessions}`,
    'LoginGraceTime 120',
    'LogLevel INFO',
    `Subsystem sftp ${s.sftpServer}`,
    `SetEnv HOME=${s.home}`,
    '',
  ].join('\n');
}

/** One known_hosts line per host address (`[address]:port`), all with the fleet's single host key. */
export function renderKnownHosts(addresses: string[], port: number, hostKeyLine: string): string {
  const [type, blob] = hostKeyLine.trim().split(/\s+/);
  if (!type || !blob) throw new Error(`not an OpenSSH public key line: ${JSON.stringify(hostKeyLine)}`);
  return addresses.map((a) => `[${a}]:${port} ${type} ${blob}\n`).join('');
}
