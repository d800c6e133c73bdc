import * as fs from 'node:fs';
import * as path from 'node:path';
import { runOk } from '../lib/exec';

const IDENTITY = [
  '-c',
  'user.name=bench',
  '-c',
  'user.email=bench@example.com',
  '-c',
  'commit.gpgsign=false',
];

/** A throwaway git repository: the product deploys committed files of a commit, so each release is a commit. */
export class ScratchRepo {
  private ready = false;

  constructor(readonly dir: string) {}

  /** Writes the files (paths relative to the repo), commits everything, returns the commit's full SHA. */
  async commit(files: Record<string, string>, message: string): Promise<string> {
    if (!this.ready) {
      fs.mkdirSync(this.dir, { recursive: true });
      await runOk('git', ['init', '-q', this.dir]);
      this.ready = true;
    }
    for (const [rel, text] of Object.entries(files)) {
      const file = path.join(this.dir, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    }
    await runOk('git', ['-C', this.dir, 'add', '-A']);
    await runOk('git', ['-C', this.dir, ...IDENTITY, 'commit', '-q', '--allow-empty', '-m', message]);
    return (await runOk('git', ['-C', this.dir, 'rev-parse', 'HEAD'])).trim();
  }
}
