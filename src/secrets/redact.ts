/**
 * Holds every secret value the run knows and removes them from any text before it is logged, reported or
 * thrown. Also masks each line of multi-line values, because logs and tails are cut on line boundaries.
 */
export class Redactor {
  private readonly values = new Set<string>();
  private onAdd: ((value: string) => void)[] = [];

  add(value: string | undefined): void {
    if (!value) return;
    const whole = value.trim();
    // PEM armor lines are public boilerplate; masking them would only blank out unrelated log lines.
    const lines = value
      .split(/\r?\n/)
      .map((v) => v.trim())
      .filter((v) => v.length >= 4 && !/^-----(BEGIN|END) /.test(v));
    const parts = whole ? [whole, ...lines] : lines;
    for (const v of parts) {
      if (this.values.has(v)) continue;
      this.values.add(v);
      for (const cb of this.onAdd) cb(v);
    }
  }

  /** Lets the Actions adapter register each value with core.setSecret as soon as it is known. */
  subscribe(cb: (value: string) => void): void {
    this.onAdd.push(cb);
    for (const v of this.values) cb(v);
  }

  redact(text: string): string {
    if (this.values.size === 0 || !text) return text;
    let out = text;
    // Longest first, so a value containing another is masked whole.
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) {
      if (out.includes(v)) out = out.split(v).join('***');
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
