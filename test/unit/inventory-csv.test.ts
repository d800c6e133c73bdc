import { readCsv, type CsvResult } from '../../src/config/inventory-csv';

const records = (r: CsvResult) => {
  if ('problem' in r) throw new Error(`unexpected problem: ${JSON.stringify(r.problem)}`);
  return r.records.map((x) => [x.line, x.fields]);
};

describe('CSV reader (RFC 4180)', () => {
  it('reads plain fields, with CRLF, LF or a lone CR between records, and a last record without a line break', () => {
    expect(records(readCsv('a,b\r\n1,2\r\n'))).toEqual([
      [1, ['a', 'b']],
      [2, ['1', '2']],
    ]);
    expect(records(readCsv('a,b\n1,2\n3,4'))).toEqual([
      [1, ['a', 'b']],
      [2, ['1', '2']],
      [3, ['3', '4']],
    ]);
    expect(records(readCsv('a,b\r1,2\r'))).toEqual([
      [1, ['a', 'b']],
      [2, ['1', '2']],
    ]);
  });

  it('keeps commas, doubled quotes and line breaks inside quoted fields, and counts the lines they span', () => {
    const text =
      'name,customer,note\r\n' +
      'a,"Müller, Hans & Co","say ""hi"""\r\n' +
      'b,"Nord\nSüd","x\r\ny"\r\n' +
      'c,plain,\r\n';
    expect(records(readCsv(text))).toEqual([
      [1, ['name', 'customer', 'note']],
      [2, ['a', 'Müller, Hans & Co', 'say "hi"']],
      [3, ['b', 'Nord\nSüd', 'x\r\ny']],
      [6, ['c', 'plain', '']],
    ]);
  });

  it('reads empty fields, quoted empty fields and a record of one quoted empty field; skips blank lines', () => {
    expect(records(readCsv('a,,c\n\n,,\n""\n  \n"",x\n'))).toEqual([
      [1, ['a', '', 'c']],
      [3, ['', '', '']],
      [4, ['']],
      [6, ['', 'x']],
    ]);
  });

  it('drops spaces around unquoted fields and outside quotes, keeps them inside quotes; strips a BOM', () => {
    expect(records(readCsv('\ufeffname , x\n  a  , " b " \n'))).toEqual([
      [1, ['name', 'x']],
      [2, ['a', ' b ']],
    ]);
  });

  it('names the line of an unclosed quote, of a stray quote and of text after a closing quote', () => {
    expect(readCsv('a,b\n1,"open\nstill open\n')).toEqual({
      problem: { line: 2, message: 'a quoted field is not closed: a " opens it here and no " ends it' },
    });
    expect(readCsv('a,b\n"x\ny",ok\n1,ab"c\n')).toEqual({
      problem: {
        line: 4,
        message:
          'a " inside an unquoted field; put the whole field in quotes and write the quote twice ("a ""b"" c")',
      },
    });
    expect(readCsv('a,b\n"x"y,2\n')).toEqual({
      problem: {
        line: 2,
        message:
          '"y" follows the closing quote of a field; a quote inside a quoted field is written twice ("")',
      },
    });
  });
});
