import { DeployError } from '../errors';

/**
 * Two dotenv dialects read the same .env differently. Docker Compose (compose-go) takes single-quoted values
 * literally and unescapes \\, \" and \$ in double quotes. podman-compose reads it with python-dotenv, which
 * unescapes \\ and \' inside single quotes and interpolates ${...} in double quotes. Each dialect gets the
 * quoting under which every value, with `$ ' " # =` and spaces, reaches the container byte for byte.
 */
export type EnvDialect = 'compose' | 'python-dotenv';

export function quoteEnvValue(value: string, dialect: EnvDialect = 'compose'): string {
  if (dialect === 'python-dotenv') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (!value.includes("'") && !/[\n\r]/.test(value)) return `'${value}'`;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

export function collectSecrets(keys: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const missing = keys.filter((k) => env[k] === undefined || env[k] === '');
  if (missing.length > 0) {
    throw new DeployError(
      'precondition',
      `secrets.keys: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set or empty in the runner's environment; no host was touched`,
      { phase: 'preflight' },
    );
  }
  return Object.fromEntries(keys.map((k) => [k, env[k] as string]));
}

export function renderEnvFile(values: Record<string, string>, dialect: EnvDialect = 'compose'): string {
  if (dialect === 'python-dotenv') {
    // python-dotenv (0.21, as podman-compose uses it) expands ${...} inside any quotes and has no escape for it.
    const bad = Object.entries(values)
      .filter(([, v]) => v.includes('${'))
      .map(([k]) => k);
    if (bad.length) {
      throw new DeployError(
        'precondition',
        `secrets.keys: the value of ${bad.join(', ')} contains "\${", which podman-compose's .env reader always expands; it cannot reach the container unchanged`,
      );
    }
  }
  return (
    '# written by homelab-deploy; do not edit on the host, values come from the runner\n' +
    Object.entries(values)
      .map(([k, v]) => `${k}=${quoteEnvValue(v, dialect)}`)
      .join('\n') +
    '\n'
  );
}

/** Parses what renderEnvFile wrote (quoted values may span lines) and plain KEY=value lines, to tell which keys changed. */
export function parseEnvFile(text: string, dialect: EnvDialect = 'compose'): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /^([A-Za-z_][A-Za-z0-9_]*)=/gm;
  let m: RegExpExecArray | null;
  let from = 0;
  while ((m = re.exec(text)) !== null) {
    if (m.index < from) continue; // inside a previous multi-line value
    let i = m.index + m[0].length;
    const q = text[i];
    let value = '';
    if (q === "'" || q === '"') {
      const escapes = q === '"' || dialect === 'python-dotenv';
      for (i++; i < text.length && text[i] !== q; i++) {
        if (escapes && text[i] === '\\' && i + 1 < text.length) {
          const c = text[++i];
          value += q === '"' && c === 'n' ? '\n' : q === '"' && c === 'r' ? '\r' : c;
        } else value += text[i];
      }
      i++;
    } else {
      const eol = text.indexOf('\n', i);
      value = text.slice(i, eol < 0 ? undefined : eol);
      i = eol < 0 ? text.length : eol;
    }
    out[m[1]] = value;
    from = i;
  }
  return out;
}

export function changedKeys(before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k]).sort();
}
