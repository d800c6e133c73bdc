/**
 * A reader for the plain YAML that configs and inventories are written in: block mappings and sequences, flow
 * mappings and sequences on one line, plain, single- and double-quoted scalars, literal block scalars (`|`, `|-`),
 * comments, with the YAML 1.2 core schema for plain scalars. It exists for speed: a config of a thousand hosts
 * loads in a fraction of the time the full parser takes, and the full parser's positions are only needed when
 * there is something to report.
 *
 * It gives up, returning undefined, on anything outside that subset (anchors, tags, folded scalars, multi-line
 * flow collections or plain scalars, documents, duplicate keys, ...) and on anything that is not valid YAML, so
 * the caller then reads the text with the full parser, which gives the real value or the real error. Where it
 * does answer, the answer is what the full parser's `toJS()` gives (tests compare the two on mutated inputs).
 */

const GIVE_UP = Symbol('outside the subset');

/** Characters the subset leaves to the full parser: tabs, control characters, other line breaks, a lone CR. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNSUPPORTED = /[\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u0085\u2028\u2029\ufeff]|\r(?!\n)/;

export function readSimpleYaml(input: string): { value: unknown } | undefined {
  let text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  if (UNSUPPORTED.test(text)) return undefined;
  if (text.includes('\r')) text = text.replace(/\r\n/g, '\n');
  try {
    return { value: new Reader(text).document() };
  } catch (err) {
    if (err === GIVE_UP) return undefined;
    throw err;
  }
}

function giveUp(): never {
  throw GIVE_UP;
}

const SPACE = 32;
const HASH = 35;
const COLON = 58;
const DASH = 45;

/** Indentation of a line, or -1 when it holds nothing to read (blank, or only a comment). */
function indentOf(line: string): number {
  let k = 0;
  while (line.charCodeAt(k) === SPACE) k++;
  return k === line.length || line.charCodeAt(k) === HASH ? -1 : k;
}

const isFlowIndicator = (c: string | undefined) =>
  c === ',' || c === '[' || c === ']' || c === '{' || c === '}';

/** A plain scalar as the core schema reads it; gives up on the forms the subset does not resolve. */
function resolvePlain(s: string): unknown {
  const c = s.charCodeAt(0);
  // Most values are words: a letter other than the first of true/false/null is always a string.
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90)) {
    if (c !== 116 && c !== 84 && c !== 102 && c !== 70 && c !== 110 && c !== 78) return s;
    switch (s) {
      case 'true':
      case 'True':
      case 'TRUE':
        return true;
      case 'false':
      case 'False':
      case 'FALSE':
        return false;
      case 'null':
      case 'Null':
      case 'NULL':
        return null;
    }
    return s;
  }
  if (s === '~') return null;
  if (/^[-+]?[0-9]+$/.test(s)) return parseInt(s, 10);
  if (
    /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s) ||
    /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s)
  )
    return parseFloat(s);
  if (/^0o[0-7]+$|^0x[0-9a-fA-F]+$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$/.test(s)) giveUp();
  return s;
}

const ESCAPES: Record<string, string> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  t: '\t',
  n: '\n',
  v: '\v',
  f: '\f',
  r: '\r',
  e: '\x1b',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\x85',
  _: '\xa0',
  L: '\u2028',
  P: '\u2029',
};
const HEX_DIGITS: Record<string, number> = { x: 2, u: 4, U: 8 };

interface Scanned {
  value: unknown;
  end: number;
}

class Reader {
  private readonly lines: string[];
  private readonly indents: number[];
  private i = 0;

  constructor(text: string) {
    this.lines = text.split('\n');
    this.indents = this.lines.map(indentOf);
    for (let k = 0; k < this.lines.length; k++) {
      if (this.indents[k] !== 0) continue;
      const l = this.lines[k];
      if (l.charCodeAt(0) === 37 /* % */ || /^(?:---|\.\.\.)(?: |$)/.test(l)) giveUp();
    }
  }

  document(): unknown {
    this.skip();
    if (this.i >= this.lines.length) giveUp();
    const value = this.node(-1);
    this.skip();
    if (this.i < this.lines.length) giveUp();
    return value;
  }

  private skip(): void {
    while (this.i < this.lines.length && this.indents[this.i] < 0) this.i++;
  }

  private isEntry(line: string, col: number): boolean {
    return line.charCodeAt(col) === DASH && (col + 1 === line.length || line.charCodeAt(col + 1) === SPACE);
  }

  /** The node that starts on the current line, more indented than its parent. */
  private node(parent: number): unknown {
    const col = this.indents[this.i];
    if (col <= parent) giveUp();
    const line = this.lines[this.i];
    if (this.isEntry(line, col)) return this.sequence(col);
    if (this.keyEnd(line, col) >= 0) return this.mapping(col);
    const v = this.inline(line, col, false);
    this.trailing(line, v.end);
    this.i++;
    return v.value;
  }

  /** A block mapping whose keys start at `col` (on the current line possibly after a `- `). */
  private mapping(col: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (;;) {
      const line = this.lines[this.i];
      const colon = this.keyEnd(line, col);
      if (colon < 0) giveUp();
      const key = this.key(line, col, colon);
      if (Object.prototype.hasOwnProperty.call(out, key) || key === '__proto__' || key === '<<') giveUp();
      let k = colon + 1;
      while (line.charCodeAt(k) === SPACE) k++;
      if (k === line.length || line.charCodeAt(k) === HASH) {
        this.i++;
        this.skip();
        const next = this.indents[this.i];
        if (this.i >= this.lines.length || next < col) out[key] = null;
        else if (next === col) out[key] = this.isEntry(this.lines[this.i], col) ? this.sequence(col) : null;
        else out[key] = this.node(col);
      } else if (line.charCodeAt(k) === 124 /* | */) {
        out[key] = this.literal(line, k, col);
      } else {
        const v = this.inline(line, k, false);
        this.trailing(line, v.end);
        out[key] = v.value;
        this.i++;
      }
      this.skip();
      if (this.i >= this.lines.length) return out;
      const next = this.indents[this.i];
      if (next < col) return out;
      if (next > col || this.isEntry(this.lines[this.i], col)) giveUp();
    }
  }

  private sequence(col: number): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      const line = this.lines[this.i];
      let k = col + 1;
      while (line.charCodeAt(k) === SPACE) k++;
      if (k === line.length || line.charCodeAt(k) === HASH) {
        this.i++;
        this.skip();
        out.push(this.i < this.lines.length && this.indents[this.i] > col ? this.node(col) : null);
      } else if (this.isEntry(line, k)) {
        giveUp();
      } else if (line.charCodeAt(k) === 124 /* | */) {
        out.push(this.literal(line, k, col));
      } else if (this.keyEnd(line, k) >= 0) {
        out.push(this.mapping(k));
      } else {
        const v = this.inline(line, k, false);
        this.trailing(line, v.end);
        out.push(v.value);
        this.i++;
      }
      this.skip();
      if (this.i >= this.lines.length) return out;
      const next = this.indents[this.i];
      if (next < col) return out;
      if (next > col) giveUp();
      if (!this.isEntry(this.lines[this.i], col)) return out;
    }
  }

  /** Where the `:` of a block mapping key starting at `col` is, or -1 when the line holds no key there. */
  private keyEnd(line: string, col: number): number {
    const c = line[col];
    let k: number;
    if (c === '"' || c === "'") {
      k = (c === '"' ? this.doubleQuoted(line, col) : this.singleQuoted(line, col)).end;
      while (line.charCodeAt(k) === SPACE) k++;
      if (line.charCodeAt(k) !== COLON) return -1;
    } else {
      if (c === '{' || c === '[') return -1;
      const s = this.plainEnd(line, col, false);
      if (line.charCodeAt(s) !== COLON) return -1;
      k = s;
    }
    return k + 1 === line.length || line.charCodeAt(k + 1) === SPACE ? k : -1;
  }

  private key(line: string, col: number, colon: number): string {
    if (colon - col > 1000) giveUp();
    const c = line[col];
    if (c === '"') return this.doubleQuoted(line, col).value as string;
    if (c === "'") return this.singleQuoted(line, col).value as string;
    const text = line.slice(col, colon).trimEnd();
    const value = resolvePlain(text);
    if (typeof value !== 'string') giveUp();
    return value;
  }

  /** After a value: only spaces and a comment may follow on the line. */
  private trailing(line: string, k: number): void {
    let j = k;
    while (line.charCodeAt(j) === SPACE) j++;
    if (j === line.length) return;
    if (line.charCodeAt(j) === HASH && line.charCodeAt(j - 1) === SPACE) return;
    giveUp();
  }

  /** A value on the current line at `k`: a flow collection, a quoted or a plain scalar. */
  private inline(line: string, k: number, flow: boolean): Scanned {
    switch (line[k]) {
      case '"':
        return this.doubleQuoted(line, k);
      case "'":
        return this.singleQuoted(line, k);
      case '{':
        return this.flowMapping(line, k);
      case '[':
        return this.flowSequence(line, k);
    }
    const end = this.plainEnd(line, k, flow);
    if (end === k) giveUp();
    // In block context a plain scalar ends at ": " only where a key would be: a nested mapping on one line.
    if (!flow && line.charCodeAt(end) === COLON) giveUp();
    return { value: resolvePlain(line.slice(k, end).trimEnd()), end };
  }

  /** The end of a plain scalar starting at `k` (exclusive), before trailing spaces are trimmed. */
  private plainEnd(line: string, k: number, flow: boolean): number {
    const c = line[k];
    if (c === undefined || ',[]{}#&*!|>\'"%@`'.includes(c)) giveUp();
    const next = line[k + 1];
    if (
      (c === '-' || c === '?' || c === ':') &&
      (next === undefined || next === ' ' || (flow && isFlowIndicator(next)))
    )
      giveUp();
    let j = k + 1;
    for (; j < line.length; j++) {
      const ch = line[j];
      if (ch === ':') {
        const after = line[j + 1];
        if (after === undefined || after === ' ' || (flow && isFlowIndicator(after))) break;
      } else if (ch === '#') {
        if (line[j - 1] === ' ') break;
      } else if (flow && isFlowIndicator(ch)) break;
    }
    return j;
  }

  private doubleQuoted(line: string, k: number): Scanned {
    let out = '';
    let from = k + 1;
    // Both searches only move forward, so a long line of many escapes is still read in one pass.
    let q = line.indexOf('"', from);
    let b = line.indexOf('\\', from);
    for (;;) {
      if (q < 0) giveUp();
      if (b < 0 || q < b) return { value: out + line.slice(from, q), end: q + 1 };
      out += line.slice(from, b);
      const e = line[b + 1];
      if (e === undefined) giveUp();
      const digits = HEX_DIGITS[e];
      if (digits !== undefined) {
        const hex = line.slice(b + 2, b + 2 + digits);
        if (hex.length !== digits || !/^[0-9a-fA-F]+$/.test(hex)) giveUp();
        const code = parseInt(hex, 16);
        if (code > 0x10ffff) giveUp();
        out += String.fromCodePoint(code);
        from = b + 2 + digits;
      } else {
        const plain = ESCAPES[e];
        if (plain === undefined) giveUp();
        out += plain;
        from = b + 2;
      }
      if (q < from) q = line.indexOf('"', from);
      if (b < from) b = line.indexOf('\\', from);
    }
  }

  private singleQuoted(line: string, k: number): Scanned {
    let out = '';
    let from = k + 1;
    for (;;) {
      const q = line.indexOf("'", from);
      if (q < 0) giveUp();
      if (line[q + 1] === "'") {
        out += line.slice(from, q + 1);
        from = q + 2;
        continue;
      }
      return { value: out + line.slice(from, q), end: q + 1 };
    }
  }

  private spaces(line: string, k: number): number {
    while (line.charCodeAt(k) === SPACE) k++;
    return k;
  }

  private flowMapping(line: string, start: number): Scanned {
    const out: Record<string, unknown> = {};
    let k = this.spaces(line, start + 1);
    if (line[k] === '}') return { value: out, end: k + 1 };
    for (;;) {
      let key: string;
      const c = line[k];
      if (c === '"' || c === "'") {
        const q = c === '"' ? this.doubleQuoted(line, k) : this.singleQuoted(line, k);
        key = q.value as string;
        k = this.spaces(line, q.end);
        if (line[k] !== ':') giveUp();
      } else {
        if (c === '{' || c === '[') giveUp();
        const end = this.plainEnd(line, k, true);
        if (line[end] !== ':') giveUp();
        const value = resolvePlain(line.slice(k, end).trimEnd());
        if (typeof value !== 'string') giveUp();
        key = value;
        k = end;
      }
      if (Object.prototype.hasOwnProperty.call(out, key) || key === '__proto__' || key === '<<') giveUp();
      k = this.spaces(line, k + 1);
      if (line[k] === ',' || line[k] === '}') out[key] = null;
      else {
        const v = this.inline(line, k, true);
        out[key] = v.value;
        k = this.spaces(line, v.end);
      }
      if (line[k] === '}') return { value: out, end: k + 1 };
      if (line[k] !== ',') giveUp();
      k = this.spaces(line, k + 1);
      if (line[k] === '}' || line[k] === ',') giveUp();
    }
  }

  private flowSequence(line: string, start: number): Scanned {
    const out: unknown[] = [];
    let k = this.spaces(line, start + 1);
    if (line[k] === ']') return { value: out, end: k + 1 };
    for (;;) {
      const v = this.inline(line, k, true);
      out.push(v.value);
      k = this.spaces(line, v.end);
      if (line[k] === ']') return { value: out, end: k + 1 };
      if (line[k] !== ',') giveUp();
      k = this.spaces(line, k + 1);
      if (line[k] === ']' || line[k] === ',') giveUp();
    }
  }

  /** A literal block scalar (`|` or `|-`) whose indicator is at `k`; its text is more indented than `parent`. */
  private literal(line: string, k: number, parent: number): string {
    let h = k + 1;
    const strip = line[h] === '-';
    if (strip) h++;
    if (h < line.length && line.charCodeAt(h) !== SPACE) giveUp();
    this.trailing(line, h);
    this.i++;
    const body: (string | number)[] = []; // text, or the length of a line of spaces only
    let indent = -1;
    for (; this.i < this.lines.length; this.i++) {
      const l = this.lines[this.i];
      let sp = 0;
      while (l.charCodeAt(sp) === SPACE) sp++;
      if (sp === l.length) {
        body.push(sp);
        continue;
      }
      if (sp <= parent) break;
      if (indent < 0) indent = sp;
      else if (sp < indent) giveUp();
      body.push(l.slice(indent));
    }
    if (indent < 0) giveUp();
    // A line of spaces reaching past the text's indentation is content the subset does not read.
    const texts = body.map((b) => (typeof b === 'number' ? (b > indent ? giveUp() : '') : b));
    let end = texts.length;
    while (end > 0 && texts[end - 1] === '') end--;
    const text = texts.slice(0, end).join('\n');
    return strip ? text : `${text}\n`;
  }
}
