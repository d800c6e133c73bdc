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
  /** Every value, longest first (kept sorted as values arrive), so a value containing another is masked whole. */
  private readonly sorted: string[] = [];
  /** Combined matchers that tell in one pass whether any value occurs; values added since wait in `unmatched`. */
  private matchers: RegExp[] = [];
  private unmatched: string[] = [];

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
      insertLongestFirst(this.sorted, v);
      this.unmatched.push(v);
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
    if (!text || (this.values.size === 0 && this.shortValues.size === 0)) return text;
    let out = text;
    // Most text holds no secret: one pass of the combined matcher says so, and the text comes back untouched.
    if (this.values.size > 0 && this.mayContainValue(text)) {
      for (const v of this.sorted) {
        if (out.includes(v)) out = out.split(v).join('***');
      }
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

  /**
   * Deep-redacts every string in a JSON-able value. The result is what a JSON round trip with every string
   * redacted would give, but parts that need no change are shared with the input instead of copied (the input
   * itself comes back when nothing in it changes), so treat the result as read-only.
   */
  redactDeep<T>(value: T): T {
    const out = this.deep(value, false);
    return (out === OMIT ? undefined : out) as T;
  }

  private deep(v: unknown, inArray: boolean): unknown {
    switch (typeof v) {
      case 'string':
        return this.redact(v);
      case 'number':
        // JSON writes NaN and the infinities as null, and -0 as 0.
        return Number.isFinite(v) ? (Object.is(v, -0) ? 0 : v) : null;
      case 'boolean':
        return v;
      case 'undefined':
      case 'function':
      case 'symbol':
        return inArray ? null : OMIT;
      case 'bigint':
        return JSON.stringify(v); // throws, as the round trip would
    }
    if (v === null) return null;
    if (Array.isArray(v)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const r = this.deep(v[i], true);
        if (r !== v[i] && !copy) copy = v.slice(0, i);
        if (copy) copy.push(r);
      }
      return copy ?? v;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (
      (proto !== Object.prototype && proto !== null) ||
      typeof (v as { toJSON?: unknown }).toJSON === 'function'
    ) {
      // Dates, errors, class instances: whatever JSON makes of them, redacted.
      return JSON.parse(
        JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? this.redact(x) : x)),
      ) as unknown;
    }
    const obj = v as Record<string, unknown>;
    let copy: Record<string, unknown> | undefined;
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const r = this.deep(obj[k], false);
      if (r !== obj[k] && !copy) {
        copy = {};
        for (let j = 0; j < i; j++) copy[keys[j]] = obj[keys[j]];
      }
      if (copy && r !== OMIT) copy[k] = r;
    }
    return copy ?? obj;
  }

  private mayContainValue(text: string): boolean {
    if (this.unmatched.length > 0) {
      // Values arrive in batches (one secret's forms, one key's lines); a batch gets a matcher of its own, and
      // many small ones are merged, so neither adding nor matching grows with the square of the values held.
      if (this.matchers.length >= 8) this.matchers = [alternation(this.sorted)];
      else this.matchers.push(alternation(this.unmatched));
      this.unmatched = [];
    }
    for (const re of this.matchers) if (re.test(text)) return true;
    return false;
  }
}

/** Marks a property JSON would leave out (undefined, a function, a symbol). */
const OMIT = Symbol('omit');

function alternation(values: readonly string[]): RegExp {
  return new RegExp(values.map(escapeRe).join('|'));
}

function insertLongestFirst(list: string[], v: string): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].length >= v.length) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, v);
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
