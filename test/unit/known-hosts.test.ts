import { createHmac, randomBytes } from 'node:crypto';
import { utils } from 'ssh2';
import { fingerprint, HostKeyPolicy, knownHostsName, parseKnownHosts } from '../../src/remote/known-hosts';

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
});
