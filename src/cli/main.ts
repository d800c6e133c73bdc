import { ConfigError } from '../config/errors';
import { DeployError } from '../errors';
import { parseCommandLine, UsageError } from './args';
import { COMMANDS } from './commands';
import { renderCommandHelp, renderGlobalHelp } from './help';
import { defaultConfig, type CliIo } from './io';

export type { CliIo } from './io';

/** The CLI: argv in, exit code out; output goes to `io` (tests pass their own). */
export async function main(
  argv: string[],
  io: CliIo = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const env = io.env ?? process.env;
  try {
    const parsed = parseCommandLine(argv, COMMANDS);
    if (parsed.kind === 'help') {
      io.out.write((parsed.command ? renderCommandHelp(parsed.command) : renderGlobalHelp(COMMANDS)) + '\n');
      return parsed.code;
    }
    const { command, values, operands } = parsed;
    return await command.run({ values, operands, configPath: values.config ?? defaultConfig(), env }, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err.write(err.message + '\n');
      return 2;
    }
    if (err instanceof ConfigError) {
      io.err.write(err.message + '\n');
      return 2;
    }
    if (err instanceof DeployError) {
      io.err.write(`error [${err.errorClass}]: ${err.message}\n`);
      return err.errorClass === 'config' ? 2 : 1;
    }
    io.err.write(`internal error: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
}
