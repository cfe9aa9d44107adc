import { acceptedFormat } from './data-export.controller';

describe("an export's format, from Accept", () => {
  it('takes the type the client prefers by q-value, then by order; a wildcard or nothing chooses none', () => {
    const cases: [string | undefined, string | null][] = [
      ['text/csv', 'csv'],
      ['application/x-ndjson', 'ndjson'],
      ['application/x-ndjson;q=0.5, text/csv', 'csv'],
      ['text/csv;q=0.2, application/x-ndjson;q=0.9', 'ndjson'],
      ['application/x-ndjson, text/csv', 'ndjson'],
      ['text/csv;q=0, application/x-ndjson', 'ndjson'],
      ['text/csv;q=0', null],
      ['TEXT/CSV', 'csv'],
      ['text/html, */*;q=0.8', null],
      ['*/*', null],
      ['text/*', null],
      ['', null],
      [undefined, null],
      ['text/csv;charset=utf-8', 'csv'],
      ['application/json', null],
    ];
    expect(cases.map(([accept]) => [accept, acceptedFormat(accept)])).toEqual(cases);
  });
});
