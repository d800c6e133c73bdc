import { parseArgs } from 'node:util';
import { nearest } from '../config/suggest';
import { parseDuration } from '../util/duration';
import { versionProblem } from '../release/names';
import { splitSelectors } from './selectors';
import type { Command } from './command';
import { OPTION_NAMES, OPTIONS, spec, type OptionName, type OptionValues } from './options';
import { MAX_SHARDS } from '../plan/shards';

/** A mistake on the command line: printed with a pointer to help, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose help explains the mistake; none for the global help. */
    readonly command?: Command,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Parsed =
  | { kind: 'help'; command?: Command; code: number; stream: 'out' }
  | { kind: 'command'; command: Command; values: OptionValues; operands: string[] };

const PARSE_OPTIONS = Object.fromEntries(
  OPTION_NAMES.map((n) => {
    const o: { type: 'string' | 'boolean'; short?: string } = {
      type: 'value' in OPTIONS[n] ? 'string' : 'boolean',
    };
    const short = (OPTIONS[n] as { short?: string }).short;
    if (short) o.short = short;
    return [n, o];
  }),
);

const isKnownOption = (name: string): name is OptionName => (OPTION_NAMES as string[]).includes(name);
const takesValue = (name: OptionName) => 'value' in OPTIONS[name];

/** Finds the command the words name: `run`, or `lock release` (`lock` alone is `lock status`). */
function findCommand(words: string[], commands: Command[]): { command: Command; used: number } {
  const visible = commands.filter((c) => !c.hidden);
  const first = words[0];
  const groups = [...new Set(commands.map((c) => c.name.split(' ')[0]))];
  if (!groups.includes(first)) {
    const near = nearest(first, [...new Set(visible.map((c) => c.name.split(' ')[0]))]);
    throw new UsageError(
      `unknown command "${first}"${near ? `; did you mean "${near}"?` : ''} (homelab-deploy --help lists the commands)`,
    );
  }
  const exact = commands.find((c) => c.name === first);
  if (exact) return { command: exact, used: 1 };
  const subs = commands.filter((c) => c.name.startsWith(`${first} `));
  const sub = words[1] ?? subs[0].name.split(' ')[1];
  const found = subs.find((c) => c.name === `${first} ${sub}`);
  if (!found) {
    const near = nearest(
      sub,
      subs.map((c) => c.name.split(' ')[1]),
    );
    throw new UsageError(
      `unknown ${first} command "${sub}"${near ? ` (did you mean "${first} ${near}"?)` : ''}: expected ${subs.map((c) => `"${c.name}"`).join(' or ')}`,
    );
  }
  return { command: found, used: words[1] === undefined ? 1 : 2 };
}

/** --shards: a whole number in GitHub's matrix range, the bad value quoted as given. */
function shardCount(raw: string): number {
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARDS)
    throw new UsageError(
      `--shards must be a whole number from 1 to ${MAX_SHARDS} (GitHub's matrix limit), got ${JSON.stringify(raw)}`,
    );
  return n;
}

/**
 * Reads argv against the command table: which command, which options (each one checked to apply to that
 * command), and their values converted. Mistakes are UsageErrors that name the option, the command and the value.
 */
export function parseCommandLine(argv: string[], commands: Command[]): Parsed {
  const { tokens } = parseArgs({
    args: argv,
    options: PARSE_OPTIONS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const words = tokens.filter((t) => t.kind === 'positional').map((t) => t.value);
  const options = tokens.filter((t) => t.kind === 'option');
  const wantsHelp = options.some((t) => t.name === 'help');

  if (words[0] === 'help') {
    if (!words[1]) return { kind: 'help', code: 0, stream: 'out' };
    return { kind: 'help', command: findCommand(words.slice(1), commands).command, code: 0, stream: 'out' };
  }
  if (!words.length) return { kind: 'help', code: wantsHelp ? 0 : 2, stream: 'out' };
  const { command, used } = findCommand(words, commands);
  if (wantsHelp) return { kind: 'help', command, code: 0, stream: 'out' };

  const applies = new Set<string>(command.options.map((o) => o.name));
  const raw: Partial<Record<OptionName, string | boolean>> = {};
  for (const t of options) {
    const shown = t.rawName.startsWith('--') ? t.rawName : `${t.rawName} (--${t.name})`;
    if (!isKnownOption(t.name)) {
      const near =
        nearest(
          t.name,
          command.options.map((o) => o.name),
        ) ?? nearest(t.name, OPTION_NAMES);
      throw new UsageError(
        `unknown option ${t.rawName} for "${command.name}"${near ? `; did you mean --${near}?` : ''}`,
        command,
      );
    }
    if (!applies.has(t.name)) {
      const owners = commands
        .filter((c) => !c.hidden && c.options.some((o) => o.name === t.name))
        .map((c) => c.name);
      throw new UsageError(
        `${shown} does not apply to "${command.name}"${owners.length ? `; it is an option of ${owners.join(', ')}` : ''}`,
        command,
      );
    }
    const inline = spec(t.name).inline;
    if (inline) {
      if (t.value !== undefined && !inline.includes(t.value))
        throw new UsageError(
          `${shown} takes no value or ${inline.map((v) => `"=${v}"`).join(', ')}, got ${JSON.stringify(t.value)}`,
          command,
        );
      // `--skip-tests force` would leave "force" as an argument; say how to write it instead.
      const next = tokens[tokens.indexOf(t) + 1];
      if (t.value === undefined && next?.kind === 'positional' && inline.includes(next.value))
        throw new UsageError(`${shown} takes its value after "=": ${t.rawName}=${next.value}`, command);
      raw[t.name] = t.value ?? true;
      continue;
    }
    if (takesValue(t.name)) {
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith('--')))
        throw new UsageError(
          `${shown} needs a value (${(OPTIONS[t.name] as { value: string }).value})`,
          command,
        );
      raw[t.name] = t.value;
    } else {
      if (t.value !== undefined)
        throw new UsageError(`${shown} takes no value, got ${JSON.stringify(t.value)}`, command);
      raw[t.name] = true;
    }
  }

  const operands = words.slice(used);
  const want = command.operands ?? { name: '', help: '', min: 0, max: 0 };
  if (operands.length > want.max)
    throw new UsageError(
      want.max === 0
        ? `"${command.name}" takes no arguments, got ${JSON.stringify(operands[0])}`
        : `"${command.name}" takes at most ${want.max} ${want.name}, got ${operands.length}: ${operands.map((o) => JSON.stringify(o)).join(' ')}`,
      command,
    );
  if (operands.length < want.min)
    throw new UsageError(`"${command.name}" needs ${want.name}: ${want.help}`, command);

  const str = (n: OptionName) => (typeof raw[n] === 'string' ? (raw[n] as string) : undefined);
  const lockWait = str('lock-wait');
  let lockWaitMs: number | undefined;
  if (lockWait !== undefined) {
    lockWaitMs = parseDuration(lockWait);
    if (lockWaitMs === undefined)
      throw new UsageError(
        `--lock-wait must be a duration such as 0, 30s or 5m, got ${JSON.stringify(lockWait)}`,
      );
  }
  const shards = str('shards');
  const targets = str('targets');
  const releaseVersion = str('release-version');
  if (releaseVersion !== undefined) {
    const why = versionProblem(releaseVersion);
    if (why) throw new UsageError(`--release-version: ${why}`, command);
  }
  const to = str('to');
  if (to !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:+@/-]{0,255}$/.test(to))
    throw new UsageError(
      `--to must be "previous" or a version on record (\`homelab-deploy releases\` lists them), got ${JSON.stringify(to)}`,
      command,
    );
  if (raw['ignore-window'] && raw['wait-window'])
    throw new UsageError(
      'give --ignore-window (deploy now, audited) or --wait-window (wait for the window to open), not both',
      command,
    );
  return {
    kind: 'command',
    command,
    operands,
    values: {
      config: str('config'),
      phase: str('phase'),
      ref: str('ref'),
      // An empty --targets means every target, as leaving it out does.
      targets: targets === undefined || !splitSelectors(targets).length ? undefined : splitSelectors(targets),
      json: raw.json === true,
      reportFile: str('report-file'),
      lockWaitMs,
      force: raw.force === true,
      all: raw.all === true,
      actor: str('actor'),
      shards: shards === undefined ? undefined : shardCount(shards),
      matrix: str('matrix'),
      summary: raw.summary === true,
      metrics: raw.metrics === true,
      yes: raw.yes === true,
      ignoreWindow: raw['ignore-window'] === true,
      waitWindow: raw['wait-window'] === true,
      releaseVersion,
      skipTests: raw['skip-tests'] === 'force' ? 'force' : raw['skip-tests'] === true,
      noRollback: raw['no-rollback'] === true,
      to,
      html: str('html'),
    },
  };
}
