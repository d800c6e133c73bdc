export interface ConfigIssue {
  path: string; // dotted path in the file, e.g. hosts.vps.ssh.port
  line?: number;
  column?: number;
  message: string;
}

/** File-wide problems first, then in the order a reader meets them in the file. */
function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/** All problems of one config file, reported together so a user fixes them in one pass. */
export class ConfigError extends Error {
  readonly file: string;
  readonly issues: ConfigIssue[];

  constructor(file: string, issues: ConfigIssue[]) {
    const sorted = [...issues].sort(byPosition);
    super(ConfigError.format(file, sorted));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = sorted;
  }

  static format(file: string, issues: ConfigIssue[]): string {
    const lines = [...issues].sort(byPosition).map((i) => {
      const where =
        i.line === undefined ? file : `${file}:${i.line}${i.column === undefined ? '' : `:${i.column}`}`;
      return `  ${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
    });
    return `${issues.length} problem${issues.length === 1 ? '' : 's'} in ${file}:\n${lines.join('\n')}`;
  }
}

const MAX_QUOTE = 60;

/**
 * A value as a message quotes it: JSON (so a string reads as one and `22x` differs from 22), cut to a readable
 * length. Credentials written into a URL (`https://user:pass@host`) are masked: the message lands in CI logs.
 */
export function quoteValue(value: unknown, max = MAX_QUOTE): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(maskUserinfo(value)) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function maskUserinfo(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/i, '$1***@');
  if (Array.isArray(value)) return value.map(maskUserinfo);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskUserinfo(v)]));
  return value;
}
