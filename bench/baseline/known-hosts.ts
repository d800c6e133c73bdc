/**
 * Plain known_hosts entries (`host`, `[host]:port`, comma lists), read once per run: key = host pattern as
 * ssh writes it, value = the raw public key blobs listed for it. Hashed and wildcard entries are outside
 * what the baseline needs and are skipped; a host without an entry is refused.
 */
export function parseKnownHosts(text: string): Map<string, Buffer[]> {
  const keys = new Map<string, Buffer[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@') || line.startsWith('|')) continue;
    const [hosts, , blob] = line.split(/\s+/);
    if (!hosts || !blob) continue;
    const key = Buffer.from(blob, 'base64');
    for (const h of hosts.split(',')) {
      const list = keys.get(h) ?? [];
      list.push(key);
      keys.set(h, list);
    }
  }
  return keys;
}

export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}
