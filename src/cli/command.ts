import type { CliIo } from './io';
import type { OptionName, OptionValues } from './options';

/** An option as one command uses it; `help` replaces the general wording where the command means more. */
export interface OptionUse {
  name: OptionName;
  help?: string;
}

/** One command of the CLI: what help shows, what it accepts, and what it does. */
export interface Command {
  /** As typed: `run`, `lock release`. */
  name: string;
  summary: string;
  /** The usage line after `homelab-deploy <name>`. */
  usage: string;
  options: OptionUse[];
  /** Arguments that are not options (report files, a shell name); none when absent. */
  operands?: { name: string; help: string; min: number; max: number; complete?: 'file' | string[] };
  examples: string[];
  /** Paragraphs after the options (exit codes, signals). */
  notes?: string[];
  /** Hidden from help and completion (the completion helper). */
  hidden?: boolean;
  run(args: CommandArgs, io: CliIo): Promise<number>;
}

export interface CommandArgs {
  values: OptionValues;
  operands: string[];
  /** The config file: --config, else the default lookup. */
  configPath: string;
  env: NodeJS.ProcessEnv;
}
