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

/** One host pattern, decoded once: names are compared as OpenSSH does, case-insensitively. */
type Matcher =
  | { kind: 'exact'; name: string }
  | { kind: 'glob'; re: RegExp }
  | { kind: 'hashed'; salt: Buffer; hash: Buffer }
  | { kind: 'never' };

function compilePattern(pattern: string): Matcher {
  if (pattern.startsWith('|')) {
    const parts = pattern.split('|'); // ['', '1', salt, hash]
    if (parts.length !== 4 || parts[1] !== '1') return { kind: 'never' };
    return { kind: 'hashed', salt: Buffer.from(parts[2], 'base64'), hash: Buffer.from(parts[3], 'base64') };
  }
  const p = pattern.toLowerCase();
  if (!/[*?]/.test(p)) return { kind: 'exact', name: p };
  const re = new RegExp(
    '^' +
      p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
  );
  return { kind: 'glob', re };
}

/**
 * `lower` is the name lowercased (plain patterns); `raw` is the name as given, which is what a hashed entry
 * hashes (ssh-keygen -H hashes the name as OpenSSH looked it up).
 */
function matches(m: Matcher, lower: string, raw: string): boolean {
  switch (m.kind) {
    case 'exact':
      return m.name === lower;
    case 'glob':
      return m.re.test(lower);
    case 'hashed': {
      const actual = createHmac('sha1', m.salt).update(raw).digest();
      return m.hash.length === actual.length && timingSafeEqual(m.hash, actual);
    }
    case 'never':
      return false;
  }
}

interface CompiledEntry {
  entry: KnownHostEntry;
  positive: Matcher[];
  negative: Matcher[];
}

function compileEntry(entry: KnownHostEntry): CompiledEntry {
  const positive: Matcher[] = [];
  const negative: Matcher[] = [];
  for (const p of entry.patterns) {
    if (p.startsWith('!')) negative.push(compilePattern(p.slice(1)));
    else positive.push(compilePattern(p));
  }
  return { entry, positive, negative };
}

function compiledMatches(c: CompiledEntry, lower: string, raw: string): boolean {
  for (const m of c.negative) if (matches(m, lower, raw)) return false;
  for (const m of c.positive) if (matches(m, lower, raw)) return true;
  return false;
}

export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  return compiledMatches(compileEntry(entry), name.toLowerCase(), name);
}

/**
 * A parsed known_hosts file, with every pattern compiled once and exact names indexed, so looking up one host
 * costs a map lookup plus the entries that need a scan (wildcards, hashed names). The answer per name is kept:
 * every connection (and reconnection) to a host asks it twice, once for the key types and once to verify.
 */
export class KnownHosts {
  private readonly byName = new Map<string, CompiledEntry[]>();
  private readonly scanned: CompiledEntry[] = [];
  private readonly revoked = new Set<string>();
  private readonly memo = new Map<string, readonly KnownHostEntry[]>();
  readonly hasTrusted: boolean;

  constructor(readonly entries: readonly KnownHostEntry[]) {
    let trusted = false;
    for (const e of entries) {
      if (e.marker === 'revoked') {
        this.revoked.add(e.key.toString('base64'));
        continue;
      }
      trusted = true;
      const c = compileEntry(e);
      let indexed = false;
      let needsScan = false;
      for (const m of c.positive) {
        if (m.kind === 'exact') {
          const list = this.byName.get(m.name);
          if (list) {
            if (list[list.length - 1] !== c) list.push(c);
          } else this.byName.set(m.name, [c]);
          indexed = true;
        } else if (m.kind !== 'never') needsScan = true;
      }
      // An entry with both exact and wildcard patterns is found either way; the scan list is what catches it
      // for a name none of its exact patterns gives.
      if (needsScan || !indexed) this.scanned.push(c);
    }
    this.hasTrusted = trusted;
  }

  static parse(text: string): KnownHosts {
    return new KnownHosts(parseKnownHosts(text));
  }

  /** Trusted (not revoked) entries whose patterns match `name`, in file order. */
  forHost(name: string): readonly KnownHostEntry[] {
    const hit = this.memo.get(name);
    if (hit) return hit;
    const lower = name.toLowerCase();
    const found = new Set<CompiledEntry>();
    for (const c of this.byName.get(lower) ?? []) if (compiledMatches(c, lower, name)) found.add(c);
    for (const c of this.scanned) if (!found.has(c) && compiledMatches(c, lower, name)) found.add(c);
    const result = [...found].sort((a, b) => a.entry.line - b.entry.line).map((c) => c.entry);
    this.memo.set(name, result);
    return result;
  }

  /** A key marked @revoked is refused for every host, whatever the line's host patterns say. */
  isRevoked(keyBlob: Buffer): boolean {
    return this.revoked.size > 0 && this.revoked.has(keyBlob.toString('base64'));
  }
}

/**
 * Reads and compiles each known_hosts file once: a run connects to every host (and reconnects some), and
 * re-reading a fleet's file per connection costs time that grows with the square of the fleet.
 */
export class KnownHostsCache {
  private readonly files = new Map<string, KnownHosts>();
  private readonly texts = new Map<string, KnownHosts>();

  /** Throws the fs error (ENOENT, EACCES) for a file that cannot be read; a failed read is not cached. */
  file(path: string): KnownHosts {
    let k = this.files.get(path);
    if (!k) {
      k = KnownHosts.parse(fs.readFileSync(path, 'utf8'));
      this.files.set(path, k);
    }
    return k;
  }

  text(text: string): KnownHosts {
    let k = this.texts.get(text);
    if (!k) {
      k = KnownHosts.parse(text);
      this.texts.set(text, k);
    }
    return k;
  }
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

const EMPTY = new KnownHosts([]);

/** Decides whether a presented host key is trusted; fails closed on anything not explicitly trusted. */
export class HostKeyPolicy {
  private readonly known: KnownHosts;

  constructor(
    entries: readonly KnownHostEntry[] | KnownHosts,
    private readonly pinned: string[] = [],
    readonly source = 'known_hosts',
  ) {
    this.known = entries instanceof KnownHosts ? entries : new KnownHosts(entries);
  }

  static fromFile(file: string | undefined, pinned: string[], cache?: KnownHostsCache): HostKeyPolicy {
    const known = !file ? EMPTY : cache ? cache.file(file) : KnownHosts.parse(fs.readFileSync(file, 'utf8'));
    return new HostKeyPolicy(known, pinned, file ?? 'pinned fingerprints');
  }

  /** known_hosts content handed over directly (e.g. from an environment variable), named `source` in messages. */
  static fromText(text: string, pinned: string[], source: string, cache?: KnownHostsCache): HostKeyPolicy {
    return new HostKeyPolicy(cache ? cache.text(text) : KnownHosts.parse(text), pinned, source);
  }

  /** True when nothing could ever be trusted: connecting would only be refused, or worse, be trust on first use. */
  get isEmpty(): boolean {
    return this.pinned.length === 0 && !this.known.hasTrusted;
  }

  /** Key types known for this host, so the handshake asks for a key we can check first. */
  keyTypesFor(name: string): string[] {
    return [...new Set(this.known.forHost(name).map((e) => e.keyType))];
  }

  /** What a key for this host must be: `type SHA256:...` per known_hosts entry, then the pinned fingerprints. */
  expectedFor(name: string): string[] {
    return [...this.known.forHost(name).map((e) => `${e.keyType} ${fingerprint(e.key)}`), ...this.pinned];
  }

  verify(name: string, keyBlob: Buffer): HostKeyVerdict {
    const fp = fingerprint(keyBlob);
    if (this.known.isRevoked(keyBlob)) return { ok: false, reason: 'revoked', fingerprint: fp, expected: [] };
    if (this.pinned.includes(fp)) return { ok: true, fingerprint: fp };
    if (this.known.forHost(name).some((e) => e.key.equals(keyBlob))) return { ok: true, fingerprint: fp };
    const expected = this.expectedFor(name);
    return { ok: false, reason: expected.length ? 'mismatch' : 'unknown-host', fingerprint: fp, expected };
  }
}

/** Host key algorithms ssh2 can verify, in its own order of preference (ssh-dss left out, as ssh2 does). */
export const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** ssh2 host-key algorithm names for a known_hosts key type. */
export function algorithmsForKeyTypes(types: string[]): string[] {
  return types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
}

/**
 * The host key algorithms to offer: those of the keys we hold for the host first, so the server shows one we
 * can check whenever it has one, then every other type. The others never widen trust (a key is accepted only if
 * it matches), but they let a server without any of our types still show its key, so the refusal can say
 * which key it has instead of failing with "no matching host key format".
 */
export function hostKeyAlgorithmsFor(types: string[]): string[] {
  // ssh2 throws on a name it does not know (a security-key type, say); such a key can never be checked anyway.
  const first = algorithmsForKeyTypes(types).filter(
    (t) => HOST_KEY_ALGORITHMS.includes(t) || t === 'ssh-dss',
  );
  return [...new Set([...first, ...HOST_KEY_ALGORITHMS])];
}
