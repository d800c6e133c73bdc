import { shQuote } from '../../../remote/quote';
import type { Step } from '../../../remote/steps';

/**
 * After the new env file was written as a 0600 temp file (fsynced) beside the old one: check its size and sha256
 * on the host, keep the old file for rollback (once per release: a re-run must not replace the pre-deploy copy
 * with this run's values), rename over, and make the rename durable.
 */
export function envSwapStep(o: {
  dir: string;
  file: string;
  tmp: string;
  saved: string;
  size: number;
  sha256: string;
}): Step {
  const { file, tmp, saved } = o;
  return {
    name: 'env-swap',
    display: `verify and rename ${file}`,
    script: [
      `cd ${shQuote(o.dir)} || exit 1`,
      `[ "$(wc -c < ${shQuote(tmp)} | tr -d ' ')" = ${o.size} ] || { echo "size mismatch"; rm -f ${shQuote(tmp)}; exit 1; }`,
      `[ "$(sha256sum ${shQuote(tmp)} | cut -d' ' -f1)" = ${o.sha256} ] || { echo "checksum mismatch"; rm -f ${shQuote(tmp)}; exit 1; }`,
      `if [ -f ${shQuote(file)} ] && [ ! -f ${shQuote(saved)} ]; then cp -p ${shQuote(file)} ${shQuote(`${saved}.tmp`)} && mv -f ${shQuote(`${saved}.tmp`)} ${shQuote(saved)} || { echo "could not keep the previous ${file}"; rm -f ${shQuote(tmp)}; exit 1; }; fi`,
      `mv -f ${shQuote(tmp)} ${shQuote(file)} || exit 1`,
      `sync ${shQuote(file)} . 2>/dev/null || sync`,
    ].join('\n'),
  };
}
