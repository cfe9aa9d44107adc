import { UNSEEN_CULTURES, UNSEEN_NOISE_KINDS, generateUnseenPopulation } from './unseen-population';

describe('generateUnseenPopulation', () => {
  const population = generateUnseenPopulation({ seed: 11, people: 4000 });
  const records = population.datasets.flatMap((d) => d.records);

  it('is deterministic and independent of nothing but its seed', () => {
    const again = generateUnseenPopulation({ seed: 11, people: 4000 });
    expect(again.datasets[1].records.slice(0, 50)).toEqual(population.datasets[1].records.slice(0, 50));
    const other = generateUnseenPopulation({ seed: 12, people: 4000 });
    expect(other.datasets[0].records[0]).not.toEqual(population.datasets[0].records[0]);
  });

  it('keeps a truth per record, every person in at least one registry, duplicates within each', () => {
    for (const dataset of population.datasets) expect(dataset.truth).toHaveLength(dataset.records.length);
    const seen = new Set(population.datasets.flatMap((d) => d.truth));
    expect(seen.size).toBe(4000);
    const [civil, health] = population.datasets.map((d) => d.truth);
    const both = new Set(civil).size + new Set(health).size - seen.size;
    expect(both / 4000).toBeGreaterThan(0.55);
    expect(both / 4000).toBeLessThan(0.65);
    const duplicated = civil.length - new Set(civil).size;
    expect(duplicated / new Set(civil).size).toBeGreaterThan(0.15);
    expect(duplicated / new Set(civil).size).toBeLessThan(0.25);
    const keys = new Set(records.map((r) => r.record_id));
    expect(keys.size).toBe(records.length);
  });

  it('draws every culture and both sexes about evenly, with unique national ids that are not SSNs', () => {
    for (const culture of UNSEEN_CULTURES) {
      const share = population.people.filter((p) => p.culture === culture).length / 4000;
      expect(share).toBeGreaterThan(0.2);
      expect(share).toBeLessThan(0.3);
    }
    const women = population.people.filter((p) => p.sex === 'F').length / 4000;
    expect(women).toBeGreaterThan(0.45);
    expect(women).toBeLessThan(0.55);
    const ids = population.people.map((p) => p.nationalId);
    expect(new Set(ids).size).toBe(4000);
    for (const id of ids) expect(id).toMatch(/^[A-Z]{2}\d{6}$/);
    for (const p of population.people) expect(p.postcode).toMatch(/^\d{4} [A-Z]{2}$/);
  });

  it('writes ids, postcodes and sexes in several styles, and every date is a real date', () => {
    const ids = records.map((r) => r.national_id).filter((v): v is string => v !== null);
    expect(ids.some((v) => /^[A-Z]{2}-\d{6}$/.test(v))).toBe(true);
    expect(ids.some((v) => /^[a-z]{2}\d{6}$/.test(v))).toBe(true);
    const postcodes = records.map((r) => r.postcode).filter((v): v is string => v !== null);
    expect(postcodes.some((v) => /^\d{4}[A-Z]{2}$/.test(v))).toBe(true);
    expect(postcodes.some((v) => /^\d{4} [A-Z]{2}$/.test(v))).toBe(true);
    expect(new Set(records.map((r) => r.gender))).toEqual(new Set(['F', 'M', 'female', 'male', null]));
    for (const r of records) {
      if (r.birth_date === null) continue;
      expect(r.birth_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      const date = new Date(`${r.birth_date}T00:00:00Z`);
      expect(date.toISOString().slice(0, 10)).toBe(r.birth_date);
    }
  });

  it('puts every kind of noise in, at about its rate, and swaps names', () => {
    const tally = population.noise.civil_registry;
    const civilCount = population.datasets[0].records.length;
    for (const kind of UNSEEN_NOISE_KINDS) expect(tally[kind]).toBeGreaterThan(0);
    expect(tally.nameSwap / civilCount).toBeGreaterThan(0.04);
    expect(tally.nameSwap / civilCount).toBeLessThan(0.08);
    expect(tally.idMissing / civilCount).toBeGreaterThan(0.17);
    expect(tally.idMissing / civilCount).toBeLessThan(0.23);
    // A swapped record has the family name where the given name belongs.
    const people = population.people;
    const civil = population.datasets[0];
    const swapped = civil.records.filter((r, i) => {
      const p = people[civil.truth[i]];
      return r.given_name?.toLowerCase() === p.familyName.toLowerCase() && p.givenName !== p.familyName;
    });
    expect(swapped.length).toBeGreaterThan(tally.nameSwap * 0.5);
  });

  it('scales its noise: none at 0', () => {
    const clean = generateUnseenPopulation({ seed: 3, people: 500, noise: 0 });
    for (const kind of UNSEEN_NOISE_KINDS) expect(clean.noise.health_registry[kind]).toBe(0);
    const d = clean.datasets[0];
    d.records.forEach((r, i) => {
      const p = clean.people[d.truth[i]];
      expect(r.given_name?.toLowerCase()).toBe(p.givenName.toLowerCase());
      expect(r.birth_date).toBe(p.dob);
      expect(r.national_id?.replace('-', '').toUpperCase()).toBe(p.nationalId);
    });
  });
});
