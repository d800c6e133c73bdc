import * as fs from 'node:fs';
import * as ssh2 from 'ssh2';
import type { SshSettings } from '../config/types';
import { DeployError } from '../errors';
import type { Redactor } from '../secrets/redact';
import type { Credentials } from './connection';

import { FALLBACK_KEY_ENV } from './fallback';

export { FALLBACK_KEY_ENV, FALLBACK_KNOWN_HOSTS_ENV } from './fallback';

// ssh2 is CommonJS, and Node's ES-module loader sees only some of its exports by name, not `utils`; the namespace's
// `default` is module.exports there, as under ncc and the tests' CommonJS transform. A loader that hands over
// module.exports itself as the namespace has `utils` on it directly.
const sshUtils = ((ssh2 as { default?: typeof ssh2 }).default ?? ssh2).utils;

/**
 * Loads and checks a host's private key on the runner, before any connection, so a wrong passphrase or a
 * malformed key is a local, named error instead of an opaque authentication failure on the host.
 *
 * Where the key comes from, first match wins: the host's `ssh.key_env` variable, its `ssh.key` file, then the
 * fallback (the action's `ssh-key` input), then the DEPLOY_SSH_KEY environment variable. A configured source
 * that is empty or unreadable falls through to the next one; a key that is there but cannot be parsed is an
 * error, never a reason to try another key.
 */
export function loadCredentials(
  host: string,
  ssh: SshSettings,
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
  fallbackKey?: string,
): Credentials {
  const missed: string[] = [];
  let key: string | undefined;
  let origin = '';
  if (ssh.keyEnv) {
    const v = env[ssh.keyEnv];
    if (v?.trim()) {
      key = v;
      origin = `environment variable ${ssh.keyEnv}`;
    } else missed.push(`hosts.${host}.ssh.key_env: ${ssh.keyEnv} is not set or empty`);
  }
  if (!key && ssh.key) {
    try {
      key = fs.readFileSync(ssh.key, 'utf8');
      origin = ssh.key;
    } catch (err) {
      missed.push(`hosts.${host}.ssh.key: cannot read ${ssh.key} (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  if (!key && fallbackKey?.trim()) {
    key = fallbackKey;
    origin = "the action's ssh-key input";
  }
  if (!key && env[FALLBACK_KEY_ENV]?.trim()) {
    key = env[FALLBACK_KEY_ENV];
    origin = `environment variable ${FALLBACK_KEY_ENV}`;
  }
  if (!key) {
    const configured = missed.length ? missed.join('; ') : `the config sets no ssh.key or ssh.key_env for it`;
    throw new DeployError(
      'auth',
      `no private key for ${host}: ${configured}, and neither the action's ssh-key input nor ${FALLBACK_KEY_ENV} is set`,
      { host },
    );
  }
  // Keys pasted into secrets often lose their final newline or gain CRLF; normalise before parsing.
  key = key.replace(/\r\n/g, '\n').trim() + '\n';
  redactor.add(key);
  const passphrase = ssh.passphraseEnv ? env[ssh.passphraseEnv] : undefined;
  if (passphrase) redactor.add(passphrase);
  const parsed = sshUtils.parseKey(key, passphrase);
  if (parsed instanceof Error) {
    throw new DeployError(
      'auth',
      `private key for ${host} from ${origin} cannot be used: ${parsed.message}`,
      { host },
    );
  }
  return { privateKey: key, passphrase };
}
