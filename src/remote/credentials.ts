import * as fs from 'node:fs';
import { utils } from 'ssh2';
import type { SshSettings } from '../config/types';
import { DeployError } from '../errors';
import type { Redactor } from '../secrets/redact';
import type { Credentials } from './connection';

/**
 * Loads and checks a host's private key on the runner, before any connection, so a wrong passphrase or a
 * malformed key is a local, named error instead of an opaque authentication failure on the host.
 */
export function loadCredentials(
  host: string,
  ssh: SshSettings,
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
  fallbackKey?: string,
): Credentials {
  let key: string | undefined;
  let origin: string;
  if (ssh.keyEnv) {
    key = env[ssh.keyEnv];
    origin = `environment variable ${ssh.keyEnv}`;
    if (!key)
      throw new DeployError('auth', `hosts.${host}.ssh.key_env: ${ssh.keyEnv} is not set or empty`, { host });
  } else if (ssh.key) {
    origin = ssh.key;
    try {
      key = fs.readFileSync(ssh.key, 'utf8');
    } catch (err) {
      if (!fallbackKey) {
        throw new DeployError(
          'auth',
          `hosts.${host}.ssh.key: cannot read ${ssh.key} (${(err as NodeJS.ErrnoException).code})`,
          { host },
        );
      }
    }
  } else {
    origin = 'the ssh-key input';
  }
  if (!key && fallbackKey) {
    key = fallbackKey;
    origin = 'the ssh-key input';
  }
  if (!key) throw new DeployError('auth', `no private key for ${host}`, { host });
  // Keys pasted into secrets often lose their final newline or gain CRLF; normalise before parsing.
  key = key.replace(/\r\n/g, '\n').trim() + '\n';
  redactor.add(key);
  const passphrase = ssh.passphraseEnv ? env[ssh.passphraseEnv] : undefined;
  if (passphrase) redactor.add(passphrase);
  const parsed = utils.parseKey(key, passphrase);
  if (parsed instanceof Error) {
    throw new DeployError(
      'auth',
      `private key for ${host} from ${origin} cannot be used: ${parsed.message}`,
      { host },
    );
  }
  return { privateKey: key, passphrase };
}
