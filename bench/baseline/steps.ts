/**
 * The baseline's deploy (and rollback) of one host, step by step: each exec step is one remote command on its
 * own channel, the env file is one SFTP write. The commands are built here, apart from the code that sends them.
 * Layout under the host's folder H: H/releases/<id>/REVISION, H/current -> releases/<id>, H/.env (0600),
 * H/previous (the release current pointed to before), H/.deploy.lock while a deploy holds the host.
 */
export const LOCK = '.deploy.lock';
export const ENV_FILE = '.env';
export const PREVIOUS = 'previous';

/** What earlier steps of the same host printed, by step name: a later command may depend on it. */
export type SeenOutput = ReadonlyMap<string, string>;

export type Step =
  | {
      name: string;
      kind: 'exec';
      command: string | ((seen: SeenOutput) => string);
      check(stdout: string, seen: SeenOutput): string | undefined;
    }
  | { name: string; kind: 'upload'; path: string; mode: number };

const RELEASE_NAME = /^[A-Za-z0-9._-]+$/;

export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function deploySteps(dir: string, release: string, minFreeKib: number): Step[] {
  const H = shQuote(dir);
  const id = shQuote(release);
  const ok = () => undefined;
  return [
    {
      name: 'free disk',
      kind: 'exec',
      command: `df -Pk ${H}`,
      check(out) {
        const avail = Number(out.trim().split('\n')[1]?.trim().split(/\s+/)[3]);
        return avail >= minFreeKib ? undefined : `${avail} KiB free, need ${minFreeKib}`;
      },
    },
    { name: 'lock free', kind: 'exec', command: `test ! -e ${H}/${LOCK}`, check: ok },
    { name: 'lock', kind: 'exec', command: `mkdir ${H}/${LOCK}`, check: ok },
    { name: 'env file', kind: 'upload', path: `${dir}/${ENV_FILE}`, mode: 0o600 },
    {
      name: 'record previous',
      kind: 'exec',
      command: `if t=$(readlink ${H}/current); then printf '%s\\n' "\${t##*/}"; fi > ${H}/${PREVIOUS}`,
      check: ok,
    },
    {
      name: 'write release',
      kind: 'exec',
      command: `mkdir -p ${H}/releases/${id} && printf '%s\\n' ${id} > ${H}/releases/${id}/REVISION`,
      check: ok,
    },
    {
      name: 'switch',
      kind: 'exec',
      command: `ln -sfn releases/${id} ${H}/current.tmp && mv -T ${H}/current.tmp ${H}/current`,
      check: ok,
    },
    {
      name: 'health',
      kind: 'exec',
      command: `cat ${H}/current/REVISION`,
      check: (out) => (out.trim() === release ? undefined : `REVISION is ${JSON.stringify(out.trim())}`),
    },
    { name: 'unlock', kind: 'exec', command: `rmdir ${H}/${LOCK}`, check: ok },
  ];
}

/**
 * A rollback as the baseline does it: lock, read the release the last deploy recorded as previous on the host,
 * switch current back to it, check it, unlock. Six exec channels, no upload: the env file of the newer release
 * stays (the product restores the older one; the baseline's job is the switch).
 */
export function rollbackSteps(dir: string): Step[] {
  const H = shQuote(dir);
  const ok = () => undefined;
  const previous = (seen: SeenOutput) => (seen.get('read previous') ?? '').trim();
  return [
    { name: 'lock free', kind: 'exec', command: `test ! -e ${H}/${LOCK}`, check: ok },
    { name: 'lock', kind: 'exec', command: `mkdir ${H}/${LOCK}`, check: ok },
    {
      name: 'read previous',
      kind: 'exec',
      command: `cat ${H}/${PREVIOUS}`,
      check: (out) =>
        RELEASE_NAME.test(out.trim())
          ? undefined
          : `no release to return to (previous: ${JSON.stringify(out)})`,
    },
    {
      name: 'switch back',
      kind: 'exec',
      command: (seen) =>
        `ln -sfn releases/${shQuote(previous(seen))} ${H}/current.tmp && mv -T ${H}/current.tmp ${H}/current`,
      check: ok,
    },
    {
      name: 'health',
      kind: 'exec',
      command: `cat ${H}/current/REVISION`,
      check: (out, seen) =>
        out.trim() === previous(seen) ? undefined : `REVISION is ${JSON.stringify(out.trim())}`,
    },
    { name: 'unlock', kind: 'exec', command: `rmdir ${H}/${LOCK}`, check: ok },
  ];
}
