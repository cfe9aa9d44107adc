import { parse } from 'csv-parse/sync';
import { type DatasetDefinitionInput, ErrorSink, RowValidator, validateDefinition } from '@broker/registry';
import { COUNTY_DATASETS, type CountyDatasetSlug } from './county-datasets';
import {
  type County,
  type CountyRecord,
  DEFAULT_RATES,
  countyRows,
  emptyTallies,
  generateCounty,
  syntheticPerson,
} from './county-generator';
import { toCsv } from './csv-writer';
import { foldName, stripAccents } from './identifier-noise';
import { NOISE_KINDS, NOISE_PROFILES } from './noise-profiles';

/** Whether an observed rate is within `sigmas` standard errors of the expected one (binomial). */
function withinBinomial(hits: number, trials: number, p: number, sigmas = 5): boolean {
  const sd = Math.sqrt((p * (1 - p)) / trials);
  return Math.abs(hits / trials - p) <= sigmas * sd + 1e-9;
}

const byslug = (county: County, slug: CountyDatasetSlug) => county.datasets.find((d) => d.slug === slug)!;

describe('generateCounty', () => {
  const PEOPLE = 12_000;
  let county: County;

  beforeAll(() => {
    county = generateCounty({ seed: 42, people: PEOPLE });
  });

  it('is deterministic: the same seed gives the same county, another seed another', () => {
    const small = { seed: 'determinism', people: 1500 };
    expect(JSON.stringify(generateCounty(small))).toBe(JSON.stringify(generateCounty(small)));
    expect(JSON.stringify(generateCounty({ ...small, seed: 'other' }))).not.toBe(
      JSON.stringify(generateCounty(small)),
    );
  });

  it('draws each person from a stream of their own: a larger county starts with the same people', () => {
    const small = generateCounty({ seed: 42, people: 300 });
    expect(county.people.slice(0, 300)).toEqual(small.people);
    expect(syntheticPerson({ seed: 42 }, 299)).toEqual(small.people[299]);
    const keys = new Set(byslug(county, 'jail_bookings').records.map((r) => r.booking_id));
    for (const r of byslug(small, 'jail_bookings').records) expect(keys.has(r.booking_id)).toBe(true);
  });

  it('produces 20,000+ records and the stream yields the same records', () => {
    // How fast is a benchmark's question, not a test's: timed assertions fail on a loaded machine.
    const fresh = generateCounty({ seed: 7, people: 11_000 });
    const total = fresh.datasets.reduce((n, d) => n + d.records.length, 0);
    expect(total).toBeGreaterThan(20_000);

    const tallies = emptyTallies();
    const streamed = new Map<string, number>();
    for (const row of countyRows({ seed: 7, people: 11_000 }, tallies)) {
      const key = row.record[COUNTY_DATASETS.find((d) => d.slug === row.slug)!.keyField] as string;
      streamed.set(`${row.slug}/${key}`, row.truth);
    }
    expect(streamed.size).toBe(total);
    const mismatches = fresh.datasets.flatMap((d) =>
      d.records.filter(
        (r, i) => streamed.get(`${d.slug}/${r[d.definition.keyField] as string}`) !== d.truth[i],
      ),
    );
    expect(mismatches).toEqual([]);
    expect(tallies).toEqual(fresh.noise);
  });

  it('has every dataset definition accepted by the registry rules', () => {
    for (const definition of COUNTY_DATASETS) {
      const result = validateDefinition(definition as unknown as DatasetDefinitionInput);
      expect(result).toMatchObject({ ok: true });
    }
  });

  it('writes every record valid against its dataset, as JSON and as CSV', () => {
    for (const dataset of county.datasets) {
      const validated = validateDefinition(dataset.definition as unknown as DatasetDefinitionInput);
      if (!validated.ok) throw new Error('invalid definition');
      const validator = new RowValidator(validated.definition.fields);
      const names = new Set(validated.definition.fields.map((f) => f.name));

      const jsonSink = new ErrorSink();
      const unknown = new Set<string>();
      dataset.records.forEach((record, row) => {
        for (const key of Object.keys(record)) if (!names.has(key)) unknown.add(key);
        validator.fromObject(record, row, jsonSink);
      });
      expect([...unknown]).toEqual([]);
      expect(jsonSink.errors).toEqual([]);

      const [header, ...rows] = parse(toCsv(dataset.definition.fields, dataset.records));
      const columns = header.map((h) => validated.definition.fields.findIndex((f) => f.name === h));
      const csvSink = new ErrorSink();
      rows.forEach((cells, row) => validator.fromCells(cells, columns, row, csvSink, []));
      expect(csvSink.errors).toEqual([]);
      expect(rows).toHaveLength(dataset.records.length);
    }
  });

  it('keeps record keys unique and truth indices consistent with the people', () => {
    for (const dataset of county.datasets) {
      const key = dataset.definition.keyField;
      expect(new Set(dataset.records.map((r) => r[key])).size).toBe(dataset.records.length);
      expect(dataset.truth).toHaveLength(dataset.records.length);
      // One subject id never names two people (an agency may give one person two ids, not the reverse).
      const subjects = new Map<unknown, number>();
      const problems: string[] = [];
      dataset.records.forEach((record, i) => {
        const truth = dataset.truth[i];
        if (!(Number.isInteger(truth) && truth >= 0 && truth < PEOPLE))
          problems.push(`row ${i}: truth ${truth}`);
        const subject = record[dataset.definition.subjectField];
        if (subjects.has(subject) && subjects.get(subject) !== truth)
          problems.push(`row ${i}: subject ${String(subject)}`);
        subjects.set(subject, truth);
      });
      expect(problems).toEqual([]);
    }
    expect(new Set(county.people.map((p) => p.ssn)).size).toBe(PEOPLE);
    expect(county.people.every((p, i) => p.index === i)).toBe(true);
  });

  it('records identities close to the truth: same sex, mostly the same folded names and dates', () => {
    const bookings = byslug(county, 'jail_bookings');
    let sameLast = 0;
    let sameDob = 0;
    const problems: string[] = [];
    bookings.records.forEach((record, i) => {
      const person = county.people[bookings.truth[i]];
      if (record.sex !== null && record.sex !== person.sex) problems.push(`row ${i}: sex`);
      const lastNames = [person.lastName, person.marriedName?.lastName]
        .filter(Boolean)
        .map((n) => foldName(n!));
      if (lastNames.includes(foldName(record.last_name as string))) sameLast++;
      if (record.dob === person.dob) sameDob++;
      // Bookings follow the person's eighteenth birthday; the recorded age follows the recorded date
      // of birth, which a typo may make a year younger.
      if ((record.booking_date as string) < '2018-01-01') problems.push(`row ${i}: booked before the window`);
      if ((record.age_at_booking as number) < 17)
        problems.push(`row ${i}: age ${String(record.age_at_booking)}`);
    });
    expect(problems).toEqual([]);
    expect(sameLast / bookings.records.length).toBeGreaterThan(0.94);
    expect(sameDob / bookings.records.length).toBeGreaterThan(0.95);
    expect(sameDob / bookings.records.length).toBeLessThan(0.995);
  });

  it('has people recur across agencies at the configured rates', () => {
    const persons = (slug: CountyDatasetSlug) => new Set(byslug(county, slug).truth);
    const booked = persons('jail_bookings');
    const charged = persons('court_cases');
    const supervised = persons('probation_supervision');
    const enrolled = persons('reentry_participation');
    expect(withinBinomial(booked.size, PEOPLE, DEFAULT_RATES.booked)).toBe(true);
    expect(withinBinomial(charged.size, booked.size, DEFAULT_RATES.charged)).toBe(true);
    expect(withinBinomial(supervised.size, charged.size, DEFAULT_RATES.supervised, 6)).toBe(true);
    // Enrollment needs a release before the extract date, so a little under the nominal rate.
    expect(enrolled.size / booked.size).toBeGreaterThan(DEFAULT_RATES.enrolled - 0.03);
    expect(enrolled.size / booked.size).toBeLessThan(DEFAULT_RATES.enrolled + 0.02);
    // Everyone in a later stage passed through the jail; probation follows a court case.
    for (const p of [...charged, ...enrolled]) expect(booked.has(p)).toBe(true);
    for (const p of supervised) expect(charged.has(p)).toBe(true);
    // Several bookings are common, but most people are booked once or twice.
    const perPerson = byslug(county, 'jail_bookings').records.length / booked.size;
    expect(perPerson).toBeGreaterThan(1.3);
    expect(perPerson).toBeLessThan(2.2);
  });

  it('applies each kind of noise at its profile rate', () => {
    for (const dataset of county.datasets) {
      const tally = county.noise[dataset.slug];
      expect(tally.records).toBe(dataset.records.length);
      for (const kind of NOISE_KINDS) {
        const rate = NOISE_PROFILES[dataset.slug].rates[kind] ?? 0;
        if (rate === 0) {
          expect(tally.applied[kind]).toBe(0);
          continue;
        }
        expect(tally.eligible[kind]).toBeGreaterThan(0);
        if (tally.eligible[kind] < 50) continue;
        expect({ kind, ok: withinBinomial(tally.applied[kind], tally.eligible[kind], rate) }).toEqual({
          kind,
          ok: true,
        });
      }
    }
  });

  it('shows the noise in the records themselves', () => {
    const rate = (records: CountyRecord[], test: (r: CountyRecord) => boolean) =>
      records.filter(test).length / records.length;
    const bookings = byslug(county, 'jail_bookings');
    const courts = byslug(county, 'court_cases');
    const reentry = byslug(county, 'reentry_participation');
    expect(rate(bookings.records, (r) => r.ssn === null)).toBeCloseTo(
      NOISE_PROFILES.jail_bookings.rates.SSN_MISSING!,
      1,
    );
    expect(rate(courts.records, (r) => r.ssn === null)).toBeCloseTo(
      NOISE_PROFILES.court_cases.rates.SSN_MISSING!,
      1,
    );
    // The jail writes upper case without accents or apostrophes most of the time; the court keeps them.
    const jailAccents = rate(bookings.records, (r) => stripAccents(r.last_name as string) !== r.last_name);
    const courtAccents = rate(courts.records, (r) => stripAccents(r.last_name as string) !== r.last_name);
    expect(jailAccents).toBeLessThan(courtAccents);
    expect(bookings.records.some((r) => r.last_name === 'OBRIEN')).toBe(true);
    expect(courts.records.some((r) => r.last_name === "O'Brien")).toBe(true);
    // Nicknames: self-reported names at the CBO use them most.
    const nicknamed = (d: typeof reentry) =>
      d.records.filter(
        (r, i) => foldName(r.first_name as string) !== foldName(county.people[d.truth[i]].firstName),
      ).length;
    expect(nicknamed(reentry) / reentry.records.length).toBeGreaterThan(0.05);
    // Married names: some women's later records carry a new or hyphenated last name.
    expect(bookings.records.some((r) => /-/.test(r.last_name as string))).toBe(true);
  });

  it('gives clean identifiers with noise 0: only the agencies styles differ', () => {
    const clean = generateCounty({ seed: 3, people: 2000, noise: 0 });
    for (const dataset of clean.datasets) {
      const noisy = dataset.records.filter((r, i) => {
        const person = clean.people[dataset.truth[i]];
        return (
          foldName(r.first_name as string) !== foldName(person.firstName) ||
          foldName(r.last_name as string) !== foldName(person.lastName) ||
          r.dob !== person.dob ||
          ('ssn' in r && (r.ssn as string).replace(/-/g, '') !== person.ssn.replace(/-/g, ''))
        );
      });
      expect(noisy).toEqual([]);
      for (const kind of NOISE_KINDS) expect(clean.noise[dataset.slug].applied[kind]).toBe(0);
    }
  });

  it('honours participation rates and rejects bad options', () => {
    const nobody = generateCounty({ seed: 1, people: 500, rates: { booked: 0 } });
    expect(nobody.people).toHaveLength(500);
    expect(nobody.datasets.every((d) => d.records.length === 0)).toBe(true);
    const everyone = generateCounty({
      seed: 1,
      people: 500,
      rates: { booked: 1, charged: 1, supervised: 1 },
    });
    expect(new Set(byslug(everyone, 'probation_supervision').truth).size).toBe(500);
    expect(() => generateCounty({ seed: 1, people: -1 })).toThrow(/people/);
    expect(() => generateCounty({ seed: 1, people: 10, rates: { booked: 2 } })).toThrow(/rates.booked/);
    expect(() => generateCounty({ seed: 1, people: 10, asOf: '2025-02-30' })).toThrow(/date/);
  });
});
