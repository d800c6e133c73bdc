import { loadConfig } from '../../config/load';
import { phaseNames } from '../../plan/plan';
import type { Command } from '../command';
import { bashCompletion, zshCompletion } from '../completion';

/** `completion bash|zsh`; the table it describes is handed in by the command list, which includes it. */
export function completionCommand(table: () => Command[]): Command {
  return {
    name: 'completion',
    summary: 'print a shell completion script (commands, options, phases and hosts from the config)',
    usage: 'bash|zsh',
    operands: { name: 'SHELL', help: 'bash or zsh', min: 1, max: 1, complete: ['bash', 'zsh'] },
    options: [],
    examples: [
      'source <(homelab-deploy completion bash)          # in ~/.bashrc',
      'homelab-deploy completion zsh > "${fpath[1]}/_homelab-deploy"',
    ],
    async run({ operands }, io) {
      const shell = operands[0];
      if (shell === 'bash') io.out.write(bashCompletion(table()));
      else if (shell === 'zsh') io.out.write(zshCompletion(table()));
      else {
        io.err.write(`completion: unknown shell ${JSON.stringify(shell)}; expected "bash" or "zsh"\n`);
        return 2;
      }
      return 0;
    },
  };
}

/** What the completion scripts call for names from the config; prints nothing when the config cannot be read. */
export const completeNames: Command = {
  name: '__complete',
  summary: 'names for shell completion',
  usage: 'phases|targets [--config FILE]',
  hidden: true,
  operands: { name: 'KIND', help: 'phases or targets', min: 1, max: 1 },
  options: [{ name: 'config' }],
  examples: [],
  async run({ operands, configPath }, io) {
    let config;
    try {
      config = loadConfig(configPath);
    } catch {
      return 1;
    }
    const names =
      operands[0] === 'phases'
        ? ['all', ...phaseNames(config)]
        : operands[0] === 'targets'
          ? Object.keys(config.targets)
          : undefined;
    if (!names) return 2;
    io.out.write(names.map((n) => `${n}\n`).join(''));
    return 0;
  },
};
