export interface ConfigIssue {
  path: string; // dotted path in the file, e.g. hosts.vps.ssh.port
  /** Set when the problem is in another file than the config (an inventory); line and column are in that file. */
  file?: string;
  line?: number;
  column?: number;
  message: string;
}

/**
 * File-wide problems first, then in the order a reader meets them in the file; the config file's problems before
 * those of its inventories, each inventory's together.
 */
function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  if (a.file !== b.file)
    return a.file === undefined ? -1 : b.file === undefined ? 1 : a.file < b.file ? -1 : 1;
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/** Where an issue is, as messages write it: `file:line:column`, `file:line` or `file`. */
export function issueWhere(issue: ConfigIssue, configFile: string): string {
  const file = issue.file ?? configFile;
  if (issue.line === undefined) return file;
  return `${file}:${issue.line}${issue.column === undefined ? '' : `:${issue.column}`}`;
}

/**
 * An inventory of a thousand rows with the same mistake would print a thousand lines; the first ones show what is
 * wrong and where, the count says how much.
 */
export const MAX_LISTED_PER_INVENTORY = 50;

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
    const sorted = [...issues].sort(byPosition);
    const lines: string[] = [];
    const listed = new Map<string, number>();
    for (const i of sorted) {
      if (i.file !== undefined) {
        const n = (listed.get(i.file) ?? 0) + 1;
        listed.set(i.file, n);
        if (n > MAX_LISTED_PER_INVENTORY) continue;
      }
      lines.push(`  ${issueWhere(i, file)}: ${i.path ? `${i.path}: ` : ''}${i.message}`);
    }
    for (const [other, n] of listed)
      if (n > MAX_LISTED_PER_INVENTORY)
        lines.push(`  ${other}: ${n - MAX_LISTED_PER_INVENTORY} more problems in this file are not listed`);
    const others = [...listed.keys()];
    const where =
      others.length === 0
        ? file
        : others.length === 1
          ? `${file} and ${others[0]}`
          : `${file} and ${others.length} inventory files`;
    return `${issues.length} problem${issues.length === 1 ? '' : 's'} in ${where}:\n${lines.join('\n')}`;
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
