/**
 * Secrets shorter than this are masked only where they stand as a whole word. Masking a one- to three-character
 * value everywhere would garble unrelated text (a secret "x" turned "exit" into "e***it") and tell a reader
 * where the secret occurs anyway; such a value protects little, so it gets a warning instead (see shortLabels).
 */
export const MIN_SECRET_LENGTH = 4;

const WORD = 'A-Za-z0-9_';

/**
 * Holds every secret value the run knows and removes them from any text before it is logged, reported or
 * thrown. Also masks each line of multi-line values, because logs and tails are cut on line boundaries, and the
 * forms a value takes once escaped or encoded: in a .env file (compose and python-dotenv quoting), in JSON, in a
 * single-quoted shell word, URL-encoded and base64-encoded, since a value is often printed in one of those forms
 * rather than raw.
 */
export class Redactor {
  private readonly values = new Set<string>();
  private readonly shortValues = new Set<string>();
  private readonly labels: string[] = [];
  private shortRe?: RegExp;
  private onAdd: ((value: string) => void)[] = [];

  /** `label` (e.g. the variable name) only names a value in warnings; it is never a secret itself. */
  add(value: string | undefined, label?: string): void {
    if (!value) return;
    const whole = value.trim();
    if (whole && whole.length < MIN_SECRET_LENGTH && !/[\r\n]/.test(whole)) {
      if (!this.shortValues.has(whole)) {
        this.shortValues.add(whole);
        this.shortRe = undefined;
        this.labels.push(label ?? `a ${whole.length}-character value`);
      }
      return;
    }
    // PEM armor lines are public boilerplate; masking them would only blank out unrelated log lines.
    const lines = value
      .split(/\r?\n/)
      .map((v) => v.trim())
      .filter((v) => v.length >= MIN_SECRET_LENGTH && !/^-----(BEGIN|END) /.test(v));
    const parts = whole ? [whole, ...lines] : lines;
    for (const v of parts.flatMap(forms)) {
      if (this.values.has(v)) continue;
      this.values.add(v);
      for (const cb of this.onAdd) cb(v);
    }
  }

  /** Labels of values too short to mask everywhere; the caller should warn about each. */
  get shortLabels(): readonly string[] {
    return this.labels;
  }

  /**
   * Lets the Actions adapter register each value with core.setSecret as soon as it is known. Short values are not
   * passed on: GitHub would mask them inside every word of every log line.
   */
  subscribe(cb: (value: string) => void): void {
    this.onAdd.push(cb);
    for (const v of this.values) cb(v);
  }

  redact(text: string): string {
    if ((this.values.size === 0 && this.shortValues.size === 0) || !text) return text;
    let out = text;
    // Longest first, so a value containing another is masked whole.
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) {
      if (out.includes(v)) out = out.split(v).join('***');
    }
    if (this.shortValues.size > 0) {
      this.shortRe ??= new RegExp(
        `(?<![${WORD}])(?:${[...this.shortValues]
          .sort((a, b) => b.length - a.length)
          .map(escapeRe)
          .join('|')})(?![${WORD}])`,
        'g',
      );
      out = out.replace(this.shortRe, '***');
    }
    return out;
  }

  /** Deep-redacts every string in a JSON-able value. */
  redactDeep<T>(value: T): T {
    return JSON.parse(
      JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? this.redact(v) : v)),
    ) as T;
  }
}

/** The value and the escaped or encoded forms it takes in env files, JSON, shell words, URLs and base64. */
function forms(v: string): string[] {
  const b64 = Buffer.from(v, 'utf8').toString('base64');
  const all = [
    v,
    JSON.stringify(v).slice(1, -1),
    // compose .env, double-quoted (secrets/env-file.ts quoteEnvValue)
    v
      .replace(/\\/g, '\\\\')
      .replace(/"/g, '\\"')
      .replace(/\$/g, '\\$')
      .replace(/\n/g, '\\n')
      .replace(/\r/g, '\\r'),
    // python-dotenv .env, single-quoted
    v.replace(/\\/g, '\\\\').replace(/'/g, "\\'"),
    // a single-quoted shell word (remote/quote.ts shQuote)
    v.replace(/'/g, `'\\''`),
    encodeURIComponent(v),
    b64,
    b64.replace(/=+$/, ''),
    b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
  ];
  return [...new Set(all)].filter((f) => f.length >= MIN_SECRET_LENGTH);
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}
