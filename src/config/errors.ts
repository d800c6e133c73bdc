export interface ConfigIssue {
  path: string; // dotted path in the file, e.g. hosts.vps.ssh.port
  line?: number;
  column?: number;
  message: string;
}

/** All problems of one config file, reported together so a user fixes them in one pass. */
export class ConfigError extends Error {
  readonly file: string;
  readonly issues: ConfigIssue[];

  constructor(file: string, issues: ConfigIssue[]) {
    super(ConfigError.format(file, issues));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }

  static format(file: string, issues: ConfigIssue[]): string {
    const lines = issues.map((i) => {
      const where =
        i.line === undefined ? file : `${file}:${i.line}${i.column === undefined ? '' : `:${i.column}`}`;
      return `  ${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
    });
    return `${issues.length} problem${issues.length === 1 ? '' : 's'} in ${file}:\n${lines.join('\n')}`;
  }
}
