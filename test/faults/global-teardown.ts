import * as fs from 'node:fs';
import * as path from 'node:path';
import { readResults, renderMatrix, RESULTS } from './matrix';

/** After the fault matrix: the table on stdout and in test/faults/output/matrix.md. */
export default function teardown(): void {
  const dir = path.dirname(RESULTS);
  const startedFile = path.join(dir, 'started');
  const started = fs.existsSync(startedFile) ? Number(fs.readFileSync(startedFile, 'utf8')) : undefined;
  const text = renderMatrix(readResults(), started ? (Date.now() - started) / 1000 : undefined);
  fs.writeFileSync(path.join(dir, 'matrix.md'), text);
  process.stdout.write(`\nFault matrix (also in ${path.join(dir, 'matrix.md')}):\n\n${text}`);
}
