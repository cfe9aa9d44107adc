import { parse } from 'csv-parse/sync';
import { csvCell, csvLines, toCsv } from './csv-writer';

describe('toCsv', () => {
  it('quotes per RFC 4180 and round-trips through a CSV parser', () => {
    const records = [
      { name: "O'Brien, Patrick", note: 'said "hi"', n: 3, ok: true, missing: null },
      { name: 'multi\nline', note: ' padded ', n: -1.5, ok: false },
      { name: 'plain', note: 'José Núñez', n: 0, ok: null, missing: 'x\r\ny' },
    ];
    const csv = toCsv(['name', 'note', 'n', 'ok', 'missing'], records);
    expect(csv.split('\r\n')[0]).toBe('name,note,n,ok,missing');
    expect(csv).toContain('"O\'Brien, Patrick","said ""hi""",3,true,\r\n');
    expect(csv.endsWith('\r\n')).toBe(true);
    const rows = parse<Record<string, string>>(csv, { columns: true });
    expect(rows).toEqual([
      { name: "O'Brien, Patrick", note: 'said "hi"', n: '3', ok: 'true', missing: '' },
      { name: 'multi\nline', note: ' padded ', n: '-1.5', ok: 'false', missing: '' },
      { name: 'plain', note: 'José Núñez', n: '0', ok: '', missing: 'x\r\ny' },
    ]);
  });

  it('takes field definitions as columns, and streams line by line', () => {
    const fields = [{ name: 'a' }, { name: 'b' }];
    const lines = [...csvLines(fields, [{ a: 1, b: 'x' }, { a: 2 }])];
    expect(lines).toEqual(['a,b\r\n', '1,x\r\n', '2,\r\n']);
    expect(lines.join('')).toBe(toCsv(fields, [{ a: 1, b: 'x' }, { a: 2 }]));
  });

  it('writes cells of every kind', () => {
    expect(csvCell(undefined)).toBe('');
    expect(csvCell('')).toBe('');
    expect(csvCell(new Date(Date.UTC(2024, 0, 2, 3, 4, 5)))).toBe('2024-01-02T03:04:05.000Z');
    expect(csvCell({ a: 1 })).toBe('"{""a"":1}"');
    expect(csvCell(10n)).toBe('10');
  });
});
