import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readStat } from '../measure/proc';

/**
 * Everything a benchmark run creates on this machine lives under one folder per run, named after the
 * benchmark's pid: keys, the sshd configs and logs, the host folders, scratch git repos. A run that was
 * killed outright (SIGKILL, a crash of the machine's session) leaves its folder behind; the next run finds it,
 * stops the sshd it recorded (only if that pid is still the same process) and removes it.
 */
export const STATE_ROOT = path.join(os.tmpdir(), 'homelab-deploy-bench');

export interface RunState {
  dir: string;
  /** Per-run files that outlive each fleet: the client key and the sessions' HOME. */
  clientKey: string;
  hostKey: string;
  home: string;
}

interface OwnerRecord {
  pid: number;
  starttime: number;
}

/** What a fleet writes next to its sshd so a later run can stop it if this one could not. */
export interface SshdRecord {
  sshdPid: number;
  starttime: number;
}

export const SSHD_RECORD = 'sshd.json';

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function sameProcess(pid: number, starttime: number): boolean {
  return readStat(pid)?.starttime === starttime;
}

/** Removes what killed runs left: returns the number of sshds it had to stop. */
export function sweepStaleRuns(log: (line: string) => void): number {
  let stopped = 0;
  let entries: string[];
  try {
    entries = fs.readdirSync(STATE_ROOT);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const dir = path.join(STATE_ROOT, name);
    const owner = readJson<OwnerRecord>(path.join(dir, 'owner.json'));
    if (owner && sameProcess(owner.pid, owner.starttime)) continue; // a benchmark running right now
    for (const sub of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      const rec = readJson<SshdRecord>(path.join(dir, sub.name, SSHD_RECORD));
      if (rec && sameProcess(rec.sshdPid, rec.starttime)) {
        // The sshd is the first process of its own pid namespace: killing it ends every connection it served.
        process.kill(rec.sshdPid, 'SIGKILL');
        stopped++;
        log(`stopped sshd ${rec.sshdPid} left by an earlier benchmark run (${dir})`);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return stopped;
}

export function createRunState(): RunState {
  fs.mkdirSync(STATE_ROOT, { recursive: true, mode: 0o700 });
  const dir = path.join(STATE_ROOT, `run-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { mode: 0o700 });
  const self = readStat(process.pid);
  const owner: OwnerRecord = { pid: process.pid, starttime: self?.starttime ?? 0 };
  fs.writeFileSync(path.join(dir, 'owner.json'), JSON.stringify(owner));
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  return {
    dir,
    clientKey: path.join(dir, 'client_ed25519'),
    hostKey: path.join(dir, 'ssh_host_ed25519_key'),
    home,
  };
}

export function removeRunState(state: RunState): void {
  fs.rmSync(state.dir, { recursive: true, force: true });
}
