/**
 * Host i (1-based) of a loopback fleet: 127.0.1.1 … 127.0.1.254, then 127.0.2.1 …. The 127.0.0.x block is
 * left alone because that is where other local servers and test sshds listen.
 */
export const MAX_HOSTS = 254 * 255;

export function hostAddress(i: number): string {
  if (!Number.isInteger(i) || i < 1 || i > MAX_HOSTS)
    throw new RangeError(`host index ${i} is not in 1..${MAX_HOSTS}`);
  const k = i - 1;
  return `127.0.${1 + Math.floor(k / 254)}.${1 + (k % 254)}`;
}

export function hostName(i: number): string {
  return `h${String(i).padStart(4, '0')}`;
}
