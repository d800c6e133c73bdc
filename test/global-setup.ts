import { execSync } from 'node:child_process';
import * as fs from 'node:fs';

/** Integration tests need a real OpenSSH server: install Debian's when missing and we may, else say what to do. */
export default function globalSetup(): void {
  if (fs.existsSync('/usr/sbin/sshd')) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      'The integration tests need OpenSSH server (/usr/sbin/sshd). Install it: sudo apt-get install -y openssh-server',
    );
  }
  const install =
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client';
  try {
    execSync(install, { stdio: 'inherit' });
  } catch {
    execSync('apt-get update -qq', { stdio: 'inherit' });
    execSync(install, { stdio: 'inherit' });
  }
  fs.mkdirSync('/run/sshd', { recursive: true });
}
