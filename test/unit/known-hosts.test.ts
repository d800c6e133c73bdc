import { createHmac, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { utils } from 'ssh2';
import {
  entryMatchesHost,
  fingerprint,
  hostKeyAlgorithmsFor,
  HostKeyPolicy,
  KnownHosts,
  KnownHostsCache,
  knownHostsName,
  parseKnownHosts,
} from '../../src/remote/known-hosts';

function key(): { line: string; blob: Buffer } {
  const pub = utils.generateKeyPairSync('ed25519').public; // "ssh-ed25519 AAAA... comment"
  const [type, b64] = pub.split(' ');
  return { line: `${type} ${b64}`, blob: Buffer.from(b64, 'base64') };
}

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  const a = key();
  const b = key();

  it('matches plain, [host]:port, wildcard and hashed entries', () => {
    const text = [
      `# comment`,
      `thinkpad.lan,192.0.2.10 ${a.line}`,
      `[vps.example.com]:2222 ${b.line}`,
      `*.example.org ${a.line}`,
      `${hashed('[192.0.2.20]:2200')} ${b.line}`,
    ].join('\n');
    const p = new HostKeyPolicy(parseKnownHosts(text));
    expect(p.verify('thinkpad.lan', a.blob).ok).toBe(true);
    expect(p.verify(knownHostsName('vps.example.com', 2222), b.blob).ok).toBe(true);
    expect(p.verify('vps.example.com', b.blob)).toMatchObject({ ok: false, reason: 'unknown-host' });
    expect(p.verify('web.example.org', a.blob).ok).toBe(true);
    expect(p.verify('[192.0.2.20]:2200', b.blob).ok).toBe(true);
    expect(p.keyTypesFor('thinkpad.lan')).toEqual(['ssh-ed25519']);
  });

  it('fails closed on a changed key and names both fingerprints', () => {
    const p = new HostKeyPolicy(parseKnownHosts(`thinkpad.lan ${a.line}`));
    const v = p.verify('thinkpad.lan', b.blob);
    expect(v).toMatchObject({ ok: false, reason: 'mismatch', fingerprint: fingerprint(b.blob) });
    if (!v.ok) expect(v.expected[0]).toContain(fingerprint(a.blob));
  });

  it('honours @revoked and negated patterns, ignores @cert-authority', () => {
    const p = new HostKeyPolicy(
      parseKnownHosts(
        [
          `@revoked * ${a.line}`,
          `thinkpad.lan ${a.line}`,
          `*.lan,!evil.lan ${b.line}`,
          `@cert-authority *.lan ${a.line}`,
        ].join('\n'),
      ),
    );
    expect(p.verify('thinkpad.lan', a.blob)).toMatchObject({ ok: false, reason: 'revoked' });
    expect(p.verify('nas.lan', b.blob).ok).toBe(true);
    expect(p.verify('evil.lan', b.blob).ok).toBe(false);
  });

  it('accepts pinned fingerprints', () => {
    const p = new HostKeyPolicy([], [fingerprint(a.blob)]);
    expect(p.verify('anything', a.blob).ok).toBe(true);
    expect(p.verify('anything', b.blob).ok).toBe(false);
  });

  it('gives the same answers from the compiled index as entry by entry, for every kind of pattern', () => {
    const c = key();
    const text = [
      `thinkpad.lan,192.0.2.10 ${a.line}`,
      `THINKPAD.LAN ${c.line}`, // names compare case-insensitively, like OpenSSH
      `*.lan,!evil.lan ${b.line}`,
      `nas.lan,*.example.org ${c.line}`, // exact and wildcard in one entry
      `${hashed('[192.0.2.20]:2200')} ${b.line}`,
      `${hashed('thinkpad.lan')} ${b.line}`,
      `|2|bogus|hash ${a.line}`,
      `192.0.2.1? ${a.line}`,
    ].join('\n');
    const entries = parseKnownHosts(text);
    const known = new KnownHosts(entries);
    const names = [
      'thinkpad.lan',
      'ThinkPad.lan',
      'nas.lan',
      'evil.lan',
      'web.example.org',
      '[192.0.2.20]:2200',
      '192.0.2.10',
      '192.0.2.15',
      '192.0.2.150',
      'other',
    ];
    for (const n of names) {
      const slow = entries.filter((e) => !e.marker && entryMatchesHost(e, n)).map((e) => e.line);
      expect([n, known.forHost(n).map((e) => e.line)]).toEqual([n, slow]);
    }
    expect(known.forHost('thinkpad.lan').map((e) => e.line)).toEqual([1, 2, 3, 6]);
    expect(known.forHost('evil.lan')).toEqual([]);
    expect(known.forHost('web.example.org').map((e) => e.line)).toEqual([4]);
    // The answer for a name is kept: asked again, the same list comes back without matching again.
    expect(known.forHost('thinkpad.lan')).toBe(known.forHost('thinkpad.lan'));
    const p = new HostKeyPolicy(known);
    expect(p.keyTypesFor('thinkpad.lan')).toEqual(['ssh-ed25519']);
    expect(p.verify('thinkpad.lan', c.blob).ok).toBe(true);
    expect(p.verify('192.0.2.15', a.blob).ok).toBe(true);
    expect(p.verify('192.0.2.150', a.blob).ok).toBe(false);
  });

  it('reads each file once per cache, and a new cache reads it again', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-kh-'));
    const file = path.join(dir, 'known_hosts');
    fs.writeFileSync(file, `host.lan ${a.line}\n`);
    const cache = new KnownHostsCache();
    const first = HostKeyPolicy.fromFile(file, [], cache);
    expect(first.verify('host.lan', a.blob).ok).toBe(true);
    fs.writeFileSync(file, `host.lan ${b.line}\n`);
    // Same cache: what was read stays, for every policy built from it.
    expect(HostKeyPolicy.fromFile(file, [], cache).verify('host.lan', a.blob).ok).toBe(true);
    expect(cache.file(file)).toBe(cache.file(file));
    // Without the cache, or with a new one, the file is read as it is now.
    expect(HostKeyPolicy.fromFile(file, []).verify('host.lan', a.blob).ok).toBe(false);
    expect(HostKeyPolicy.fromFile(file, [], new KnownHostsCache()).verify('host.lan', b.blob).ok).toBe(true);
    // A file that cannot be read is an error each time (nothing is cached for it).
    expect(() => cache.file(path.join(dir, 'missing'))).toThrow(/ENOENT/);
    fs.writeFileSync(path.join(dir, 'missing'), `host.lan ${b.line}\n`);
    expect(new HostKeyPolicy(cache.file(path.join(dir, 'missing'))).verify('host.lan', b.blob).ok).toBe(true);
    // Text (DEPLOY_KNOWN_HOSTS) is parsed once per distinct content.
    expect(cache.text(`x ${a.line}`)).toBe(cache.text(`x ${a.line}`));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names what a key must be for a host, and offers the host key types it holds first', () => {
    const p = new HostKeyPolicy(parseKnownHosts(`thinkpad.lan ${a.line}`), ['SHA256:pinned']);
    expect(p.expectedFor('thinkpad.lan')).toEqual([`ssh-ed25519 ${fingerprint(a.blob)}`, 'SHA256:pinned']);
    expect(hostKeyAlgorithmsFor(['ecdsa-sha2-nistp256'])[0]).toBe('ecdsa-sha2-nistp256');
    expect(hostKeyAlgorithmsFor(['ssh-rsa']).slice(0, 3)).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
    ]);
    // A type ssh2 cannot check is left out instead of making the connection fail before it starts.
    const withSk = hostKeyAlgorithmsFor(['sk-ssh-ed25519@openssh.com']);
    expect(withSk).not.toContain('sk-ssh-ed25519@openssh.com');
    expect(withSk).toContain('ssh-ed25519');
    expect(new Set(hostKeyAlgorithmsFor(['ssh-ed25519'])).size).toBe(
      hostKeyAlgorithmsFor(['ssh-ed25519']).length,
    );
  });

  it('finds each of 1000 hosts in one file, and a changed key among them', () => {
    const lines = Array.from(
      { length: 1000 },
      (_, i) => `[192.0.2.${i % 250}]:${2000 + Math.floor(i / 250)} ${i === 777 ? b.line : a.line}`,
    );
    const known = KnownHosts.parse(lines.join('\n'));
    const p = new HostKeyPolicy(known);
    for (let i = 0; i < 1000; i++) {
      const name = knownHostsName(`192.0.2.${i % 250}`, 2000 + Math.floor(i / 250));
      expect(p.verify(name, i === 777 ? b.blob : a.blob).ok).toBe(true);
    }
    expect(p.verify(knownHostsName('192.0.2.27', 2003), a.blob)).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
  });
});
