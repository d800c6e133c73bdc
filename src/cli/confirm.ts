import type { CliIo, InStream } from './io';

/** One line from a terminal, or undefined when the input ends first. */
function readLine(input: InStream): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (chunk: Buffer | string) => {
      buf += chunk.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(buf.slice(0, nl));
    };
    const onEnd = () => done(undefined);
    const done = (line: string | undefined) => {
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.pause?.();
      resolve(line);
    };
    input.on('data', onData);
    input.on('end', onEnd);
    input.resume?.();
  });
}

export interface Checkpoint {
  /** Targets the command would touch, and the config's checkpoint.above. */
  count: number;
  above: number;
  yes: boolean;
  /** The question without the "[y/N]": `deploy to 120 targets?`. */
  question: string;
  /** The refusal without a terminal, naming the command: `run`, `rollback`. */
  command: string;
}

/**
 * The human checkpoint on the command line: above checkpoint.above targets a run needs --yes, or a "y" typed at
 * the prompt on a terminal. Without a terminal nobody can answer, so it is refused rather than assumed.
 * Returns whether the run is confirmed, or an exit code when it must not start.
 */
export async function confirmCheckpoint(c: Checkpoint, io: CliIo): Promise<boolean | number> {
  if (c.count <= c.above) return c.yes;
  if (c.yes) return true;
  const input = io.input ?? (process.stdin as unknown as InStream);
  if (!input.isTTY) {
    io.err.write(
      `${c.command}: this would touch ${c.count} targets, more than checkpoint.above (${c.above}), and there is no terminal to ask: pass --yes to confirm; nothing was touched\n`,
    );
    return 2;
  }
  io.err.write(`${c.question} [y/N] `);
  const answer = (await readLine(input))?.trim().toLowerCase();
  if (answer === 'y' || answer === 'yes') return true;
  io.err.write(`not confirmed (answer ${JSON.stringify(answer ?? '')}); nothing was touched\n`);
  return 1;
}
