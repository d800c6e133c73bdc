import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildDelayProgram } from '../helpers/faults/host-faults';
import { CLI } from '../helpers/faults/cli';
import { RESULTS } from './matrix';

/** Before the fault matrix: a clean results file, the delay program built, and a CLI bundle to run. */
export default function setup(): void {
  fs.rmSync(RESULTS, { force: true });
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(path.join(path.dirname(RESULTS), 'started'), String(Date.now()));
  buildDelayProgram(path.join(path.dirname(RESULTS), 'bin'));
  if (!fs.existsSync(CLI))
    throw new Error(`no CLI bundle at ${CLI}: run npm run build, or point HD_CLI at a bundle of the sources`);
}
