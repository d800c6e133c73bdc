import { shQuote } from '../../../remote/quote';
import type { Step } from '../../../remote/steps';

/**
 * The names a run's env-file swap keeps beside the file, so the run can undo exactly its own change: `undo`, a
 * hard link to the file it replaced; `absent`, a marker that there was none; `fromSaved`, a marker that the
 * release's copy (`.before-<release>`), made by this very swap, is the file it replaced.
 */
export function envUndoNames(
  file: string,
  runToken: string,
): { undo: string; absent: string; fromSaved: string } {
  return {
    undo: `${file}.undo-${runToken}`,
    absent: `${file}.absent-${runToken}`,
    fromSaved: `${file}.undo-saved-${runToken}`,
  };
}

/** The env file's names for one swap, relative to `dir`: the file, this run's temp file, the release's copy, the undo. */
export interface EnvSwapNames {
  dir: string;
  file: string;
  tmp: string;
  saved: string;
  undo: string;
  absent: string;
  fromSaved: string;
}

/**
 * After the new env file was written as a 0600 temp file (fsynced) beside the old one: check its size and sha256
 * on the host, keep the old file for rollback (once per release: a re-run must not replace the pre-deploy copy
 * with this run's values), keep this run's undo (a hard link to the file being replaced, which costs no space,
 * or a marker that there was none, or that the release's copy made now is it), rename over, and make the rename
 * durable. Five processes: size, checksum, one link, rename, sync. The shell swap, for a server whose SFTP
 * cannot do it (see envSwapChanges).
 */
export function envSwapStep(o: EnvSwapNames & { size: number; sha256: string }): Step {
  const [file, tmp, saved, undo, absent, fromSaved] = [
    o.file,
    o.tmp,
    o.saved,
    o.undo,
    o.absent,
    o.fromSaved,
  ].map(shQuote);
  const fail = (why: string) => `{ echo ${shQuote(why)}; rm -f ${tmp}; exit 1; }`;
  return {
    name: 'env-swap',
    display: `verify and rename ${o.file}`,
    script: [
      `cd ${shQuote(o.dir)} || exit 1`,
      // One process each for the size and the checksum: `$(...)` of a lone command runs it without a subshell.
      `s=$(wc -c < ${tmp}) && [ $s -eq ${o.size} ] || ${fail('size mismatch')}`,
      `s=$(sha256sum < ${tmp}) && [ "\${s%% *}" = ${o.sha256} ] || ${fail('checksum mismatch')}`,
      // A hard link keeps the old file whole at once (no copy half written, no space needed): the file itself is
      // only ever replaced by a rename, so the link goes on holding what it held. A copy is the fallback.
      'made=',
      `if [ -f ${file} ] && [ ! -f ${saved} ]; then { ln ${file} ${saved} 2>/dev/null || { cp -p ${file} ${shQuote(`${o.saved}.tmp`)} && mv -f ${shQuote(`${o.saved}.tmp`)} ${saved}; }; } && made=1 || { rm -f ${shQuote(`${o.saved}.tmp`)}; ${fail(`could not keep the previous ${o.file} (no space left?)`)}; }; fi`,
      // A second write by the same run keeps the undo of the first: it must lead back to before the run. Where the
      // release's copy was made just now, it is that undo, and a marker says so (no second link).
      `if [ ! -e ${undo} ] && [ ! -e ${absent} ] && [ ! -e ${fromSaved} ]; then if [ -n "$made" ]; then : > ${fromSaved} || ${fail('could not record the undo of the env file')}; elif [ -f ${file} ]; then ln -f ${file} ${undo} 2>/dev/null || cp -p ${file} ${undo} || ${fail(`could not keep the previous ${o.file} (no space left?)`)}; else : > ${absent} || ${fail('could not record that there was no env file')}; fi; fi`,
      `mv -f ${tmp} ${file} || exit 1`,
      `sync ${file} . 2>/dev/null || sync`,
    ].join('\n'),
  };
}

/** What the env-file swap found beside the file before it changed anything. */
export interface EnvSwapFound {
  file: boolean;
  saved: boolean;
  /** any of this run's undo records (undo link, absent marker, from-saved marker) */
  undoRecorded: boolean;
}

/**
 * One change of the env-file swap over SFTP, as plain data: `keep`, a hard link of `from` at `to` (a copy where
 * the file system has no hard links); `mark`, an empty file whose existence is the record; `rename`, an atomic
 * replace (posix-rename). Each fails with `why` when it cannot be made.
 */
export type EnvSwapChange =
  | { kind: 'keep'; from: string; to: string; why: string }
  | { kind: 'mark'; path: string; why: string }
  | { kind: 'rename'; from: string; to: string; why: string };

/**
 * The same decisions as envSwapStep, for a swap done with SFTP requests instead of a shell on the host (no
 * process is started there): keep the old file for the release's rollback once per release, record this run's
 * undo once per run, then rename the verified temp file over. Paths are relative to the env file's folder, and
 * the changes must be made in order, each only after the one before it succeeded.
 */
export function envSwapChanges(o: Omit<EnvSwapNames, 'dir'>, found: EnvSwapFound): EnvSwapChange[] {
  const changes: EnvSwapChange[] = [];
  const made = found.file && !found.saved;
  if (made)
    changes.push({
      kind: 'keep',
      from: o.file,
      to: o.saved,
      why: `could not keep the previous ${o.file} (no space left?)`,
    });
  if (!found.undoRecorded) {
    if (made)
      changes.push({ kind: 'mark', path: o.fromSaved, why: 'could not record the undo of the env file' });
    else if (found.file)
      changes.push({
        kind: 'keep',
        from: o.file,
        to: o.undo,
        why: `could not keep the previous ${o.file} (no space left?)`,
      });
    else changes.push({ kind: 'mark', path: o.absent, why: 'could not record that there was no env file' });
  }
  changes.push({ kind: 'rename', from: o.tmp, to: o.file, why: `could not rename ${o.tmp} to ${o.file}` });
  return changes;
}
