import type { Command } from './command';
import { optionLabel, spec } from './options';

const EXIT_CODES =
  'Exit codes: 0 success or partial_success, 1 failed / rolled_back / aborted (or a host unreachable, a lock\n' +
  'refused), 2 bad usage or config, 3 a target needs a human (a rollback failed or its state is unknown: the\n' +
  "report's needsAttention), 130/143 when a second signal ended the process.";

/** Lines of `text` wrapped at `width`, the first after `first`, the others indented by `indent` spaces. */
function wrap(text: string, width: number, indent: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l, i) => (i === 0 ? l : ' '.repeat(indent) + l));
}

/** `homelab-deploy --help`: every command with its summary, and where each one's own help is. */
export function renderGlobalHelp(commands: Command[]): string {
  const visible = commands.filter((c) => !c.hidden);
  const width = Math.max(...visible.map((c) => c.name.length));
  return [
    'homelab-deploy: phased, rollback-safe deploys to SSH hosts, Vercel projects and runner-driven platforms',
    '',
    'Usage: homelab-deploy <command> [options]',
    '',
    'Commands:',
    ...visible.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "homelab-deploy <command> --help shows a command's usage, options and an example.",
    'homelab-deploy completion bash|zsh prints a shell completion script.',
    '',
    EXIT_CODES,
  ].join('\n');
}

/** `homelab-deploy <command> --help`: usage, the options that apply (in the command's wording), examples. */
export function renderCommandHelp(c: Command): string {
  const labels = [...c.options.map((o) => optionLabel(o.name)), optionLabel('help')];
  const width = Math.max(...labels.map((l) => l.length), c.operands ? c.operands.name.length + 2 : 0);
  const out = [
    `homelab-deploy ${c.name}: ${c.summary}`,
    '',
    'Usage:',
    `  homelab-deploy ${c.name} ${c.usage}`.trimEnd(),
  ];
  if (c.operands) {
    out.push('', 'Arguments:');
    out.push(
      `  ${c.operands.name.padEnd(width)}  ${wrap(c.operands.help, 110 - width - 4, width + 4).join('\n')}`,
    );
  }
  out.push('', 'Options:');
  [...c.options, { name: 'help' as const, help: `this help` }].forEach((o, i) => {
    const help = o.help ?? spec(o.name).help;
    out.push(`  ${labels[i].padEnd(width)}  ${wrap(help, 110 - width - 4, width + 4).join('\n')}`);
  });
  out.push('', c.examples.length > 1 ? 'Examples:' : 'Example:', ...c.examples.map((e) => `  ${e}`));
  for (const n of c.notes ?? []) out.push('', n);
  return out.join('\n');
}

export { EXIT_CODES };
