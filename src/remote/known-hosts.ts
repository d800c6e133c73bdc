import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';

/** One usable line of a known_hosts file. `@cert-authority` lines are skipped: ssh2 cannot check certificates. */
export interface KnownHostEntry {
  marker?: 'revoked';
  patterns: string[]; // plain patterns (may include * ? and !negation) or one hashed |1|salt|hash
  keyType: string;
  key: Buffer;
  line: number;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const m = fields.shift() as string;
      if (m === '@revoked') marker = 'revoked';
      else return; // @cert-authority: not supported, never grants trust
    }
    if (fields.length < 3) return;
    const [hosts, keyType, b64] = fields;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    entries.push({ marker, patterns: hosts.split(','), keyType, key, line: i + 1 });
  });
  return entries;
}

/** The name OpenSSH looks up: bare host for port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .toLowerCase()
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
  );
  return re.test(name.toLowerCase());
}

function hashedMatch(pattern: string, name: string): boolean {
  const parts = pattern.split('|'); // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2], 'base64');
  const expected = Buffer.from(parts[3], 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const p of entry.patterns) {
    if (p.startsWith('|')) {
      if (hashedMatch(p, name)) matched = true;
    } else if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      matched = true;
    }
  }
  return matched;
}

export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** The key type named inside an SSH wire-format public key blob. */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

export type HostKeyVerdict =
  | { ok: true; fingerprint: string }
  | { ok: false; reason: 'unknown-host' | 'mismatch' | 'revoked'; fingerprint: string; expected: string[] };

/** Decides whether a presented host key is trusted; fails closed on anything not explicitly trusted. */
export class HostKeyPolicy {
  constructor(
    private readonly entries: KnownHostEntry[],
    private readonly pinned: string[] = [],
    readonly source = 'known_hosts',
  ) {}

  static fromFile(file: string | undefined, pinned: string[]): HostKeyPolicy {
    const text = file ? fs.readFileSync(file, 'utf8') : '';
    return new HostKeyPolicy(parseKnownHosts(text), pinned, file ?? 'pinned fingerprints');
  }

  /** known_hosts content handed over directly (e.g. from an environment variable), named `source` in messages. */
  static fromText(text: string, pinned: string[], source: string): HostKeyPolicy {
    return new HostKeyPolicy(parseKnownHosts(text), pinned, source);
  }

  /** True when nothing could ever be trusted: connecting would only be refused, or worse, be trust on first use. */
  get isEmpty(): boolean {
    return this.pinned.length === 0 && !this.entries.some((e) => !e.marker);
  }

  /** Key types known for this host, so the handshake asks for a key we can check. */
  keyTypesFor(name: string): string[] {
    return [
      ...new Set(this.entries.filter((e) => !e.marker && entryMatchesHost(e, name)).map((e) => e.keyType)),
    ];
  }

  verify(name: string, keyBlob: Buffer): HostKeyVerdict {
    const fp = fingerprint(keyBlob);
    const revoked = this.entries.some((e) => e.marker === 'revoked' && e.key.equals(keyBlob));
    if (revoked) return { ok: false, reason: 'revoked', fingerprint: fp, expected: [] };
    if (this.pinned.includes(fp)) return { ok: true, fingerprint: fp };
    const forHost = this.entries.filter((e) => !e.marker && entryMatchesHost(e, name));
    if (forHost.some((e) => e.key.equals(keyBlob))) return { ok: true, fingerprint: fp };
    const expected = [...forHost.map((e) => `${e.keyType} ${fingerprint(e.key)}`), ...this.pinned];
    return { ok: false, reason: expected.length ? 'mismatch' : 'unknown-host', fingerprint: fp, expected };
  }
}

/** ssh2 host-key algorithm names for a known_hosts key type. */
export function algorithmsForKeyTypes(types: string[]): string[] {
  return types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
}
