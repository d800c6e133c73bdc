/**
 * CSV as RFC 4180 writes it, read by hand so an inventory exported from a spreadsheet loads without a dependency:
 * fields separated by commas, records by CRLF or LF, a field in double quotes may hold commas, line breaks and
 * doubled quotes (`""`). Two liberties a spreadsheet user expects: spaces around an unquoted field are dropped
 * (and around a quoted one, outside its quotes), and blank lines are skipped. Everything else that RFC 4180 does
 * not allow is an error naming its line, never a guess.
 */

export interface CsvRecord {
  /** The line (1-based) the record starts on; a quoted field may carry it over several lines. */
  line: number;
  fields: string[];
}

export interface CsvProblem {
  line: number;
  message: string;
}

export type CsvResult = { records: CsvRecord[] } | { problem: CsvProblem };

const QUOTE = 34; // "
const COMMA = 44;
const LF = 10;
const CR = 13;
const SPACE = 32;
const TAB = 9;

const isBlank = (c: number) => c === SPACE || c === TAB;

export function readCsv(input: string): CsvResult {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const records: CsvRecord[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let quoted = false;
    // One record: fields until an unquoted line break or the end of the text.
    for (;;) {
      while (i < n && isBlank(text.charCodeAt(i))) i++;
      let value: string;
      if (i < n && text.charCodeAt(i) === QUOTE) {
        quoted = true;
        const opened = line;
        let parts = '';
        let from = ++i;
        for (;;) {
          const q = text.indexOf('"', i);
          if (q < 0)
            return {
              problem: {
                line: opened,
                message: 'a quoted field is not closed: a " opens it here and no " ends it',
              },
            };
          for (let k = i; k < q; k++) if (text.charCodeAt(k) === LF) line++;
          if (text.charCodeAt(q + 1) === QUOTE) {
            parts += text.slice(from, q + 1);
            i = from = q + 2;
            continue;
          }
          parts += text.slice(from, q);
          i = q + 1;
          break;
        }
        value = parts;
        while (i < n && isBlank(text.charCodeAt(i))) i++;
        const c = text.charCodeAt(i);
        if (i < n && c !== COMMA && c !== LF && c !== CR)
          return {
            problem: {
              line,
              message: `${JSON.stringify(text[i])} follows the closing quote of a field; a quote inside a quoted field is written twice ("")`,
            },
          };
      } else {
        const from = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c === COMMA || c === LF || c === CR) break;
          if (c === QUOTE)
            return {
              problem: {
                line,
                message:
                  'a " inside an unquoted field; put the whole field in quotes and write the quote twice ("a ""b"" c")',
              },
            };
          i++;
        }
        let end = i;
        while (end > from && isBlank(text.charCodeAt(end - 1))) end--;
        value = text.slice(from, end);
      }
      fields.push(value);
      if (i < n && text.charCodeAt(i) === COMMA) {
        i++;
        continue;
      }
      break;
    }
    // The record's line break: CRLF, LF or a lone CR.
    if (i < n && text.charCodeAt(i) === CR) i++;
    if (i < n && text.charCodeAt(i) === LF) i++;
    line++;
    // A record of one empty, unquoted field is a blank line; `""` on a line of its own is a real empty value.
    if (quoted || fields.length > 1 || fields[0] !== '') records.push({ line: start, fields });
  }
  return { records };
}
