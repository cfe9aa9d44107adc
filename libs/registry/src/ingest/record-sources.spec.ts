import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { csvSource, ndjsonSource, type RecordSource, type SourceRow, repeatedKey } from './record-sources';

/** Feeds text as a stream cut at the given positions (as a network would). */
// eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a request body is
async function* chunks(text: string, cuts: number[]): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text, 'utf8');
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (bytes.length + 1))].sort((a, b) => a - b)) {
    if (cut > at) {
      yield bytes.subarray(at, cut);
      at = cut;
    }
  }
  if (at < bytes.length) yield bytes.subarray(at);
}

async function collect(source: RecordSource): Promise<SourceRow[]> {
  const rows: SourceRow[] = [];
  for await (const group of source.groups) rows.push(...group);
  return rows;
}

// Cells built from the characters that matter to CSV: separators, quotes, line ends, and others.
const cell = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9 é]{0,6}$/),
  fc
    .array(fc.constantFrom('a', ',', '"', '\n', '\r\n', ' ', 'ü', '1'), { maxLength: 6 })
    .map((parts) => `"${parts.join('').replace(/"/g, '""')}"`),
);
const line = fc.array(cell, { minLength: 1, maxLength: 5 }).map((cells) => cells.join(','));
const document = fc
  .tuple(fc.array(line, { minLength: 1, maxLength: 12 }), fc.constantFrom('\n', '\r\n'), fc.boolean())
  .map(([lines, eol, trailing]) => lines.join(eol) + (trailing ? eol : ''));

describe('csvSource', () => {
  // The broker parses CSV itself for speed (docs/benchmarks.md); csv-parse, the reference
  // implementation, must agree with it on every well-formed document, however it is chunked.
  it('agrees with csv-parse on well-formed CSV cut into arbitrary chunks', async () => {
    await fc.assert(
      fc.asyncProperty(document, fc.array(fc.nat(), { maxLength: 8 }), async (text, cuts) => {
        const expected: string[][] = parse(text, {
          bom: true,
          relax_column_count: true,
          skip_empty_lines: true,
        });
        const source = await csvSource(chunks(text, cuts));
        const rows = await collect(source);
        expect([source.header, ...rows.map((r) => (r.kind === 'cells' ? r.cells : r))]).toEqual(
          expected.length ? [expected[0].map((h) => h.trim()), ...expected.slice(1)] : [[]],
        );
      }),
      { numRuns: 500 },
    );
  });

  it('reports an unclosed quote as a fatal error at the row where it happens', async () => {
    const source = await csvSource(chunks('a,b\n1,2\n3,"open\n4,5\n', [3, 9]));
    const rows = await collect(source);
    expect(rows).toEqual([
      { kind: 'cells', cells: ['1', '2'] },
      { kind: 'error', message: 'malformed CSV: a quoted cell is never closed', fatal: true },
    ]);
  });

  it('refuses bytes that are not UTF-8, wherever the chunks cut them, and never replaces them', async () => {
    // "Müller" as Latin-1 (0xFC), and as UTF-8 cut inside its two bytes.
    const latin1 = Buffer.concat([Buffer.from('a,b\n1,M'), Buffer.from([0xfc]), Buffer.from('ller\n')]);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 4 }), async (cuts) => {
        // eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a request body is
        async function* cut(bytes: Buffer) {
          let at = 0;
          for (const c of [...cuts.map((n) => n % (bytes.length + 1))].sort((x, y) => x - y)) {
            if (c > at) yield bytes.subarray(at, (at = c));
          }
          if (at < bytes.length) yield bytes.subarray(at);
        }
        const rows = await collect(await csvSource(cut(latin1)));
        expect(rows.at(-1)).toMatchObject({ kind: 'error', fatal: true });
        expect(JSON.stringify(rows)).not.toContain('\\ufffd');
        const utf8 = Buffer.from('a,b\n1,Müller\n', 'utf8');
        expect(await collect(await csvSource(cut(utf8)))).toEqual([
          { kind: 'cells', cells: ['1', 'Müller'] },
        ]);
      }),
    );
  });

  it('drops a byte-order mark and skips empty lines', async () => {
    const source = await csvSource(chunks('\ufeffa,b\n\n1,2\n\n', [2]));
    expect(source.header).toEqual(['a', 'b']);
    expect(await collect(source)).toEqual([{ kind: 'cells', cells: ['1', '2'] }]);
  });
});

describe('ndjsonSource', () => {
  it('splits lines across chunks and reports lines that are not JSON objects', async () => {
    const text = '{"a":1}\n\n{"a":"é"}\r\nnot json\n{"b":2}';
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 6 }), async (cuts) => {
        const rows = await collect(ndjsonSource(chunks(text, cuts)));
        expect(rows).toEqual([
          { kind: 'object', value: { a: 1 } },
          { kind: 'object', value: { a: 'é' } },
          { kind: 'error', message: 'line is not valid JSON', fatal: false },
          { kind: 'object', value: { b: 2 } },
        ]);
      }),
    );
  });

  it('refuses a record that names a field twice, which JSON.parse would keep the last of (fast-check)', async () => {
    const scalar = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), scalar, { maxKeys: 6 }),
        scalar,
        (record, value) => {
          const text = JSON.stringify(record);
          // Keys and values of any characters, quotes, colons and escapes included: no false alarm.
          expect(repeatedKey(text, JSON.parse(text))).toBeNull();
          const keys = Object.keys(record);
          if (!keys.length) return;
          const again = `${text.slice(0, -1)},${JSON.stringify(keys[0])}:${JSON.stringify(value)}}`;
          expect(repeatedKey(again, JSON.parse(again))).toBe(keys[0]);
        },
      ),
    );
    // eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a request body is
    async function* body() {
      yield Buffer.from('{"a":1,"b":2,"a":3}\n{"\\u0061":1,"a":2}\n{"a":"\\": x","b":1}\n');
    }
    expect(await collect(ndjsonSource(body()))).toEqual([
      { kind: 'error', message: 'field "a" appears twice', fatal: false },
      { kind: 'error', message: 'field "a" appears twice', fatal: false },
      { kind: 'object', value: { a: '": x', b: 1 } },
    ]);
  });

  it('refuses a line that is not UTF-8, and reads the next', async () => {
    // eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a request body is
    async function* body() {
      yield Buffer.concat([Buffer.from('{"a":"M'), Buffer.from([0xfc]), Buffer.from('ller"}\n{"a":1}\n')]);
    }
    expect(await collect(ndjsonSource(body()))).toEqual([
      { kind: 'error', message: 'line is not valid UTF-8', fatal: false },
      { kind: 'object', value: { a: 1 } },
    ]);
  });
});
