import type { Command } from './command';
import { OPTIONS, spec, type OptionName } from './options';

/**
 * Shell completion scripts, built from the command table so they never drift from what the CLI accepts. Phase
 * and host names come from the config at completion time: the scripts call `homelab-deploy __complete phases|targets
 * [--config FILE]` with the --config already typed on the line.
 */

const visible = (commands: Command[]) => commands.filter((c) => !c.hidden);
const optionNames = (c: Command): OptionName[] => [...c.options.map((o) => o.name), 'help'];
const flags = (name: OptionName) => [`--${name}`, ...(spec(name).short ? [`-${spec(name).short}`] : [])];
/** What bash offers for an option: `--skip-tests` and `--skip-tests=force` for a flag with inline values. */
const offered = (name: OptionName) => [
  `--${name}`,
  ...(spec(name).inline ?? []).map((v) => `--${name}=${v}`),
];

/** Every word a case pattern matches for the options that complete the same way. */
function patternFor(kind: 'file' | 'phases' | 'targets' | 'none', commands: Command[]): string {
  const used = new Set(commands.flatMap(optionNames));
  const names = (Object.keys(OPTIONS) as OptionName[]).filter(
    (n) => used.has(n) && 'value' in OPTIONS[n] && (spec(n).complete ?? 'none') === kind,
  );
  return names.flatMap((n) => flags(n).reverse()).join('|');
}

const bashWords = (words: string[]) => words.join(' ');

export function bashCompletion(commands: Command[]): string {
  const cmds = visible(commands);
  const top = [...new Set(cmds.map((c) => c.name.split(' ')[0]))];
  const subs = (group: string) =>
    cmds.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.name.split(' ')[1]);
  const groups = top.filter((g) => subs(g).length);
  const optionCases = cmds
    .map((c) => `    '${c.name}') opts='${bashWords(optionNames(c).flatMap(offered))}' ;;`)
    .join('\n');
  const operandCases = cmds
    .filter((c) => c.operands?.complete)
    .map((c) =>
      c.operands?.complete === 'file'
        ? `    '${c.name}') mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;`
        : `    '${c.name}') mapfile -t COMPREPLY < <(compgen -W '${bashWords(c.operands?.complete as string[])}' -- "$cur") ;;`,
    )
    .join('\n');
  return `# bash completion for homelab-deploy; load it with: source <(homelab-deploy completion bash)

# The --config typed so far, so phase and host names come from that config.
_homelab_deploy_config() {
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -c | --config) printf '%s' "\${COMP_WORDS[i + 1]}"; return ;;
      --config=*) printf '%s' "\${COMP_WORDS[i]#--config=}"; return ;;
    esac
  done
}

# Names from the config for a comma-separated value: completes the part after the last comma.
_homelab_deploy_names() {
  local kind="$1" cur="$2" prefix="" cfg names
  if [[ "$cur" == *,* ]]; then
    prefix="\${cur%,*},"
    cur="\${cur##*,}"
  fi
  cfg="$(_homelab_deploy_config)"
  names="$(homelab-deploy __complete "$kind" \${cfg:+--config "$cfg"} 2>/dev/null)"
  mapfile -t COMPREPLY < <(compgen -P "$prefix" -W "$names" -- "$cur")
  compopt -o nospace 2>/dev/null
}

_homelab_deploy() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD - 1]}"
  COMPREPLY=()
  if ((COMP_CWORD == 1)); then
    mapfile -t COMPREPLY < <(compgen -W '${bashWords([...top, 'help'])}' -- "$cur")
    return
  fi
  local cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
${groups
  .map(
    (g) => `    ${g})
      if ((COMP_CWORD == 2)) && [[ "$cur" != -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W '${bashWords(subs(g))}' -- "$cur")
        return
      fi
      case "\${COMP_WORDS[2]}" in
        ${subs(g).join(' | ')}) cmd="${g} \${COMP_WORDS[2]}" ;;
        *) cmd="${g} ${subs(g)[0]}" ;;
      esac
      ;;`,
  )
  .join('\n')}
    help)
      mapfile -t COMPREPLY < <(compgen -W '${bashWords(top)}' -- "$cur")
      return
      ;;
  esac
  case "$prev" in
    ${patternFor('file', cmds)}) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    ${patternFor('phases', cmds)}) _homelab_deploy_names phases "$cur"; return ;;
    ${patternFor('targets', cmds)}) _homelab_deploy_names targets "$cur"; return ;;
    ${patternFor('none', cmds)}) return ;;
  esac
  local opts=''
  case "$cmd" in
${optionCases}
  esac
  if [[ "$cur" != -* ]]; then
    case "$cmd" in
${operandCases}
    esac
    ((\${#COMPREPLY[@]})) && return
  fi
  mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}

complete -F _homelab_deploy homelab-deploy
`;
}

/** Text safe inside a zsh _arguments/_describe spec in single quotes: no brackets, colons or quotes. */
const zshText = (s: string) =>
  s
    .replace(/[[\]:]/g, ' ')
    .replace(/'/g, '')
    .replace(/\s+/g, ' ')
    .trim();

function zshSpecs(c: Command): string[] {
  const specs = optionNames(c).map((n) => {
    const s = spec(n);
    const help = zshText(c.options.find((o) => o.name === n)?.help ?? s.help);
    const action =
      'value' in OPTIONS[n]
        ? `:${zshText(s.value ?? 'value').toLowerCase()}:${
            s.complete === 'file'
              ? '_files'
              : s.complete === 'phases'
                ? '_homelab_deploy_names phases'
                : s.complete === 'targets'
                  ? '_homelab_deploy_names targets'
                  : ' '
          }`
        : '';
    if (s.inline) return `'--${n}=-[${help}]:${n}:(${s.inline.join(' ')})'`;
    return s.short
      ? `'(-${s.short} --${n})'{-${s.short},--${n}}'[${help}]${action}'`
      : `'--${n}[${help}]${action}'`;
  });
  if (c.operands?.complete === 'file') specs.push(`'*:${zshText(c.operands.name).toLowerCase()}:_files'`);
  else if (Array.isArray(c.operands?.complete))
    specs.push(`'1:${zshText(c.operands.name).toLowerCase()}:(${c.operands.complete.join(' ')})'`);
  return specs;
}

export function zshCompletion(commands: Command[]): string {
  const cmds = visible(commands);
  const top = [...new Set(cmds.map((c) => c.name.split(' ')[0]))];
  const summary = (group: string) =>
    cmds.find((c) => c.name === group)?.summary ??
    cmds
      .filter((c) => c.name.startsWith(`${group} `))
      .map((c) => c.name)
      .join(', ');
  const groups = top.filter((g) => cmds.some((c) => c.name.startsWith(`${g} `)));
  const cases = cmds
    .map((c) => {
      const depth = c.name.split(' ').length;
      // _arguments reads words[1] as the command: drop what comes before the (sub)command's own name.
      return `    '${c.name}')\n      shift ${depth} words; (( CURRENT -= ${depth} ))\n      _arguments -S \\\n        ${zshSpecs(c).join(' \\\n        ')}\n      ;;`;
    })
    .join('\n');
  return `#compdef homelab-deploy
# zsh completion for homelab-deploy: put it in your fpath as _homelab-deploy, or load it with
#   source <(homelab-deploy completion zsh)

# Names from the config given with --config on the line (phases or targets), comma-separated.
_homelab_deploy_names() {
  local kind=$1 cfg i
  for (( i = 2; i < CURRENT; i++ )); do
    case \${words[i]} in
      -c|--config) cfg=\${words[i+1]} ;;
      --config=*) cfg=\${words[i]#--config=} ;;
    esac
  done
  local -a names
  names=(\${(f)"$(homelab-deploy __complete $kind \${cfg:+--config} \${cfg:+$cfg} 2>/dev/null)"})
  (( \${#names} )) && _values -s , $kind $names
}

_homelab_deploy() {
  local -a commands
  commands=(
${top.map((g) => `    '${g}:${zshText(summary(g))}'`).join('\n')}
    'help:a command'"'"'s usage, options and example'
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'homelab-deploy command' commands
    return
  fi
  local cmd=\${words[2]}
  case $cmd in
${groups
  .map((g) => {
    const subs = cmds.filter((c) => c.name.startsWith(`${g} `));
    return `    ${g})
      if (( CURRENT == 3 )); then
        local -a subs
        subs=(${subs.map((c) => `'${c.name.split(' ')[1]}:${zshText(c.summary)}'`).join(' ')})
        _describe -t commands '${g} command' subs
        return
      fi
      case \${words[3]} in
        ${subs.map((c) => c.name.split(' ')[1]).join('|')}) cmd="${g} \${words[3]}" ;;
        *) return 1 ;;
      esac
      ;;`;
  })
  .join('\n')}
    help)
      _describe -t commands 'homelab-deploy command' commands
      return
      ;;
  esac
  case $cmd in
${cases}
  esac
}

if [[ \${funcstack[1]} == _homelab-deploy ]]; then
  _homelab_deploy "$@"
else
  compdef _homelab_deploy homelab-deploy
fi
`;
}
