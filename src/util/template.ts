import { DeployError } from '../errors';
import { shQuote } from './quote';

export type TemplateVars = Record<string, string | undefined>;

const PLACEHOLDER = /\{\{\s*([a-zA-Z0-9_.-]+)\s*\}\}/g;
/**
 * The same pattern, matching only where `lastIndex` points: the shell renderer asks "is there a placeholder here?"
 * per character. It has its own object so the global one above never keeps a `lastIndex` between calls
 * (`matchAll` starts where `lastIndex` was left, and would miss the placeholders before it).
 */
const PLACEHOLDER_HERE = new RegExp(PLACEHOLDER.source, 'y');

function lookup(vars: TemplateVars, key: string, where: string): string {
  const v = vars[key];
  if (v === undefined) {
    const known = Object.keys(vars).filter((k) => vars[k] !== undefined);
    throw new DeployError('config', `${where}: unknown placeholder {{${key}}}; known: ${known.join(', ')}`);
  }
  return v;
}

/** The placeholder names a template uses, in order of appearance, each once. */
export function placeholderNames(text: string): string[] {
  return [...new Set(Array.from(text.matchAll(PLACEHOLDER), (m) => m[1]))];
}

/** Replaces each placeholder with what `fill` returns for its name; for showing a template, not for running it. */
export function fillPlaceholders(text: string, fill: (name: string) => string): string {
  return text.replace(PLACEHOLDER, (_m, key: string) => fill(key));
}

/**
 * Fills `{{host.address}}`-style placeholders. Unknown names are an error, not an empty string:
 * a health check aimed at "http://:8080/" would otherwise fail in a confusing way.
 * For URLs and host:port targets only; text that a shell will run goes through renderShellTemplate.
 */
export function renderTemplate(text: string, vars: TemplateVars, where: string): string {
  return text.replace(PLACEHOLDER, (_m, key: string) => lookup(vars, key, where));
}

type QuoteState = 'plain' | 'single' | 'double' | 'subst' | 'backtick' | 'heredoc';

/**
 * Fills placeholders in a shell command so each value arrives as literal text, whatever it contains (`$(...)`,
 * backticks, quotes, `;`, newlines, a leading `-` stays one argument's text).
 *
 * The values never enter the command text itself: each becomes a variable assigned at the top with shQuote
 * (`__hd_tpl_1='...'`), and the placeholder becomes a reference to it, quoted for where it stands: `"${v}"` in plain
 * text, `${v}` inside double quotes or an unquoted here-document, `'"${v}"'` inside single quotes. The shell
 * never parses the result of a variable expansion as code, so even if the quote tracking below misjudged an unusual
 * template, the worst outcome is word splitting, never a command run from a value. The template itself is the
 * config author's shell code and is not changed. Placeholders in a quoted here-document (`<<'EOF'`) are refused:
 * nothing is expanded there, so no value could arrive.
 */
export function renderShellTemplate(template: string, vars: TemplateVars, where = 'command'): string {
  const names = new Map<string, string>();
  const assignments: string[] = [];
  const ref = (key: string): string => {
    let name = names.get(key);
    if (name === undefined) {
      const value = lookup(vars, key, where);
      if (value.includes('\0'))
        throw new DeployError('config', `${where}: the value of {{${key}}} contains a NUL byte`);
      name = `__hd_tpl_${names.size + 1}`;
      names.set(key, name);
      assignments.push(`${name}=${shQuote(value)}`);
    }
    return name;
  };
  let out = '';
  const stack: QuoteState[] = ['plain'];
  const top = () => stack[stack.length - 1];
  const heredocs: { word: string; strip: boolean; quoted: boolean }[] = []; // pending, start after the newline
  let doc: { word: string; strip: boolean; quoted: boolean } | undefined;
  let i = 0;
  while (i < template.length) {
    const state = top();
    if (state === 'heredoc' && doc) {
      // One line of a here-document body: either its end marker or text with possible placeholders.
      const eol = template.indexOf('\n', i);
      const line = template.slice(i, eol < 0 ? undefined : eol);
      if ((doc.strip ? line.replace(/^\t+/, '') : line) === doc.word) {
        stack.pop();
        doc = heredocs.shift();
        if (doc) stack.push('heredoc');
        out += line;
      } else {
        out += line.replace(PLACEHOLDER, (_m, key: string) => {
          if (doc?.quoted)
            throw new DeployError(
              'config',
              `${where}: {{${key}}} stands in a quoted here-document, where no value can be expanded; use an unquoted delimiter`,
            );
          return `\${${ref(key)}}`;
        });
      }
      if (eol < 0) break;
      out += '\n';
      i = eol + 1;
      continue;
    }
    PLACEHOLDER_HERE.lastIndex = i;
    const m = PLACEHOLDER_HERE.exec(template);
    if (m) {
      const v = `\${${ref(m[1])}}`;
      out += state === 'single' ? `'"${v}"'` : state === 'double' ? v : `"${v}"`;
      i += m[0].length;
      continue;
    }
    const c = template[i];
    const next = template[i + 1];
    if (state === 'single') {
      if (c === "'") stack.pop();
    } else if (c === '\\') {
      // A backslash makes the next character literal (outside single quotes); copy both as they are.
      out += c + (next ?? '');
      i += 2;
      continue;
    } else if (state === 'double') {
      if (c === '"') stack.pop();
      else if (c === '`') stack.push('backtick');
      else if (c === '$' && next === '(') {
        stack.push('subst');
        out += '$(';
        i += 2;
        continue;
      }
    } else {
      // plain, $( ... ) and ` ... `: quoting starts afresh inside a command substitution.
      if (c === "'") stack.push('single');
      else if (c === '"') stack.push('double');
      else if (c === '`') {
        if (state === 'backtick') stack.pop();
        else stack.push('backtick');
      } else if (c === '$' && next === '(') {
        stack.push('subst');
        out += '$(';
        i += 2;
        continue;
      } else if (c === '(' && state === 'subst') stack.push('subst');
      else if (c === ')' && state === 'subst') stack.pop();
      else if (c === '<' && next === '<' && template[i + 2] !== '<') {
        const h = /^<<(-?)[ \t]*(?:'([^']*)'|"([^"]*)"|\\?([A-Za-z0-9_.-]+))/.exec(template.slice(i));
        if (h) {
          const quoted = h[2] !== undefined || h[3] !== undefined || h[0].includes('\\');
          heredocs.push({ word: h[2] ?? h[3] ?? h[4], strip: h[1] === '-', quoted });
          out += h[0];
          i += h[0].length;
          continue;
        }
      } else if (c === '\n' && heredocs.length > 0) {
        out += c;
        i++;
        doc = heredocs.shift();
        stack.push('heredoc');
        continue;
      }
    }
    out += c;
    i++;
  }
  return assignments.length ? `${assignments.join('\n')}\n${out}` : out;
}
