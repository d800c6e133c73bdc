import { shQuote } from '../../../remote/quote';
import type { Step } from '../../../remote/steps';

/** The names a run's env-file swap keeps beside the file, so the run can undo exactly its own change. */
export function envUndoNames(file: string, runToken: string): { undo: string; absent: string } {
  return { undo: `${file}.undo-${runToken}`, absent: `${file}.absent-${runToken}` };
}

/**
 * After the new env file was written as a 0600 temp file (fsynced) beside the old one: check its size and sha256
 * on the host, keep the old file for rollback (once per release: a re-run must not replace the pre-deploy copy
 * with this run's values), keep this run's undo (a hard link to the file being replaced, which costs no space,
 * or a marker that there was none), rename over, and make the rename durable.
 */
export function envSwapStep(o: {
  dir: string;
  file: string;
  tmp: string;
  saved: string;
  undo: string;
  absent: string;
  size: number;
  sha256: string;
}): Step {
  const [file, tmp, saved, undo, absent] = [o.file, o.tmp, o.saved, o.undo, o.absent].map(shQuote);
  const fail = (why: string) => `{ echo ${shQuote(why)}; rm -f ${tmp}; exit 1; }`;
  return {
    name: 'env-swap',
    display: `verify and rename ${o.file}`,
    script: [
      `cd ${shQuote(o.dir)} || exit 1`,
      `[ "$(wc -c < ${tmp} | tr -d ' ')" = ${o.size} ] || ${fail('size mismatch')}`,
      `[ "$(sha256sum ${tmp} | cut -d' ' -f1)" = ${o.sha256} ] || ${fail('checksum mismatch')}`,
      `if [ -f ${file} ] && [ ! -f ${saved} ]; then cp -p ${file} ${shQuote(`${o.saved}.tmp`)} && mv -f ${shQuote(`${o.saved}.tmp`)} ${saved} || { rm -f ${shQuote(`${o.saved}.tmp`)}; ${fail(`could not keep the previous ${o.file} (no space left?)`)}; }; fi`,
      // A second write by the same run keeps the undo of the first: it must lead back to before the run.
      `if [ ! -e ${undo} ] && [ ! -e ${absent} ]; then if [ -f ${file} ]; then ln -f ${file} ${undo} 2>/dev/null || cp -p ${file} ${undo} || ${fail(`could not keep the previous ${o.file} (no space left?)`)}; else : > ${absent} || ${fail('could not record that there was no env file')}; fi; fi`,
      `mv -f ${tmp} ${file} || exit 1`,
      `sync ${file} . 2>/dev/null || sync`,
    ].join('\n'),
  };
}
