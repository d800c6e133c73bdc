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

/**
 * After the new env file was written as a 0600 temp file (fsynced) beside the old one: check its size and sha256
 * on the host, keep the old file for rollback (once per release: a re-run must not replace the pre-deploy copy
 * with this run's values), keep this run's undo (a hard link to the file being replaced, which costs no space,
 * or a marker that there was none, or that the release's copy made now is it), rename over, and make the rename
 * durable. Five processes: size, checksum, one link, rename, sync.
 */
export function envSwapStep(o: {
  dir: string;
  file: string;
  tmp: string;
  saved: string;
  undo: string;
  absent: string;
  fromSaved: string;
  size: number;
  sha256: string;
}): Step {
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
