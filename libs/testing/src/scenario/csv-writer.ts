/**
 * RFC 4180 CSV for uploads: a header row of field names, CRLF line ends, and a cell quoted when it
 * holds a comma, a quote, a line break or leading/trailing space (quotes doubled). null and
 * undefined are empty cells, which the broker's CSV ingest reads as null.
 */

/** A column: a field name, or anything with one (a dataset's field definition). */
export type CsvColumn = string | { name: string };

const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

/** One cell of CSV text. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    text = String(value);
  else if (value instanceof Date) text = value.toISOString();
  else text = JSON.stringify(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const names = (columns: readonly CsvColumn[]) => columns.map((c) => (typeof c === 'string' ? c : c.name));

/** The header line (with its CRLF). */
export function csvHeader(columns: readonly CsvColumn[]): string {
  return names(columns).map(csvCell).join(',') + '\r\n';
}

/** One record as a CSV line (with its CRLF); fields missing from the record are empty cells. */
export function csvLine(columns: readonly CsvColumn[], record: Readonly<Record<string, unknown>>): string {
  return (
    names(columns)
      .map((name) => csvCell(record[name]))
      .join(',') + '\r\n'
  );
}

/** A whole CSV document: the header, then one line per record. */
export function toCsv(
  columns: readonly CsvColumn[],
  records: Iterable<Readonly<Record<string, unknown>>>,
): string {
  const fields = names(columns);
  const parts = [csvHeader(fields)];
  for (const record of records) parts.push(csvLine(fields, record));
  return parts.join('');
}

/** The CSV document line by line, for streaming large extracts to a file or a request body. */
export function* csvLines(
  columns: readonly CsvColumn[],
  records: Iterable<Readonly<Record<string, unknown>>>,
): Generator<string, void, undefined> {
  const fields = names(columns);
  yield csvHeader(fields);
  for (const record of records) yield csvLine(fields, record);
}
