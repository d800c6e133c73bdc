import { DeployError } from '../errors';

/**
 * Renders a dotenv file whose values reach the container byte for byte: single quotes where possible (no
 * interpolation of `$` by compose), double quotes with escapes otherwise.
 */
export function quoteEnvValue(value: string): string {
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

export function renderEnvFile(values: Record<string, string>): string {
  return (
    '# written by homelab-deploy; do not edit on the host, values come from the runner\n' +
    Object.entries(values)
      .map(([k, v]) => `${k}=${quoteEnvValue(v)}`)
      .join('\n') +
    '\n'
  );
}

/** Parses what renderEnvFile wrote (and plain KEY=value lines), to tell which keys changed. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    const raw = m[2];
    if (raw.startsWith("'") && raw.endsWith("'") && raw.length >= 2) out[m[1]] = raw.slice(1, -1);
    else if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2)
      out[m[1]] = raw
        .slice(1, -1)
        .replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
    else out[m[1]] = raw;
  }
  return out;
}

export function changedKeys(before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k]).sort();
}
