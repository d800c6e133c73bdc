/** POSIX single-quote quoting: the only safe way to pass arbitrary text as one word to a remote shell. */
export function shQuote(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL byte cannot be passed to a shell');
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Builds `export K='v'` lines for a remote script; names are validated because they are not quoted. */
export function shExports(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
        throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
      return `export ${k}=${shQuote(v)}`;
    })
    .join('\n');
}
