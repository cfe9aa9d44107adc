/**
 * A second synthetic population, written apart from the linker and from the county generator, to
 * check that linkage holds on data it was not tuned for. Its people come from four name cultures
 * that the county does not have (Vietnamese, Arabic, Polish, Yoruba), carry a national id of two
 * letters and six digits (not a US SSN), live at Dutch-style postcodes ("3012 AB") and have a street
 * address and a city. Two registries hold records of them, each with duplicates of its own, and the
 * records carry the noise that real data does: keyboard and OCR substitutions, transpositions,
 * phonetic spellings and transliterations, given name and family name swapped, initials, values
 * replaced by another person's or missing.
 *
 * Deterministic: each person and each record is drawn from a stream of its own, so the same seed
 * always gives the same population.
 *
 * @example
 * const population = generateUnseenPopulation({ seed: 7, people: 3000 });
 * population.datasets[0].records[0].family_name; // 'NGUYEN'; population.datasets[0].truth[0] is its person
 */
import { dayNumber, formatDay, civilDate } from './civil-date';
import type { ScenarioDataset, ScenarioField } from './county-datasets';
import { SeededRandom, WeightedTable, mix32 } from './seeded-random';

/** The name cultures of the population. */
export const UNSEEN_CULTURES = ['vietnamese', 'arabic', 'polish', 'yoruba'] as const;
export type UnseenCulture = (typeof UNSEEN_CULTURES)[number];

/** The kinds of noise the population's records carry, counted per dataset. */
export const UNSEEN_NOISE_KINDS = [
  'nameKeyboard',
  'nameOcr',
  'nameTransposition',
  'namePhonetic',
  'nameSwap',
  'givenInitial',
  'givenMissing',
  'dobDigit',
  'dobTransposition',
  'dobDayMonthSwap',
  'dobReplaced',
  'dobMissing',
  'idDigit',
  'idTransposition',
  'idReplaced',
  'idMissing',
  'postcodeDigit',
  'postcodeReplaced',
  'postcodeMissing',
  'addressTypo',
  'addressMissing',
  'cityVariant',
  'cityMissing',
  'sexWrong',
  'sexMissing',
] as const;
export type UnseenNoiseKind = (typeof UNSEEN_NOISE_KINDS)[number];
export type UnseenNoiseTally = Record<UnseenNoiseKind, number>;

/** What {@link generateUnseenPopulation} takes. */
export interface UnseenPopulationOptions {
  seed: number | string;
  /** How many people; each has records in one or both registries. */
  people: number;
  /** Multiplies every noise rate (default 1). */
  noise?: number;
}

/** A person of the population: the truth behind the records. */
export interface UnseenPerson {
  index: number;
  culture: UnseenCulture;
  sex: 'F' | 'M';
  givenName: string;
  familyName: string;
  /** 'YYYY-MM-DD' */
  dob: string;
  /** Two letters and six digits, unique. */
  nationalId: string;
  /** 'NNNN LL' */
  postcode: string;
  street: string;
  city: string;
}

/** A record as a provider would upload it. */
export type UnseenRecord = Record<string, string | null>;

/** One dataset: its definition, its records and, per record, the index of its person. */
export interface UnseenDatasetRecords {
  slug: UnseenDatasetSlug;
  definition: ScenarioDataset<UnseenDatasetSlug>;
  records: UnseenRecord[];
  truth: number[];
}

export type UnseenDatasetSlug = 'civil_registry' | 'health_registry';

/** The whole population. */
export interface UnseenPopulation {
  people: UnseenPerson[];
  datasets: UnseenDatasetRecords[];
  noise: Record<UnseenDatasetSlug, UnseenNoiseTally>;
}

const field = (
  name: string,
  type: ScenarioField['type'],
  identity: ScenarioField['identity'],
  classification: ScenarioField['classification'],
): ScenarioField => ({ name, type, classification, identity });

/** Both registries have the same identity fields under the same names; their keys differ. */
function registryDefinition(slug: UnseenDatasetSlug, title: string): ScenarioDataset<UnseenDatasetSlug> {
  return {
    slug,
    title,
    description: 'A synthetic registry of a population the linker was not tuned for.',
    keyField: 'record_id',
    subjectField: 'record_id',
    fields: [
      { name: 'record_id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
      field('given_name', 'STRING', 'FIRST_NAME', 'DIRECT_IDENTIFIER'),
      field('family_name', 'STRING', 'LAST_NAME', 'DIRECT_IDENTIFIER'),
      field('birth_date', 'DATE', 'DATE_OF_BIRTH', 'QUASI_IDENTIFIER'),
      field('gender', 'STRING', 'SEX', 'QUASI_IDENTIFIER'),
      field('national_id', 'STRING', 'ID_NUMBER', 'DIRECT_IDENTIFIER'),
      field('postcode', 'STRING', 'ZIP', 'QUASI_IDENTIFIER'),
      field('street', 'STRING', 'ADDRESS', 'QUASI_IDENTIFIER'),
      field('town', 'STRING', 'CITY', 'QUASI_IDENTIFIER'),
    ],
  };
}

/** The registries' definitions, as `registerDataset` inputs. */
export const UNSEEN_DATASETS: readonly ScenarioDataset<UnseenDatasetSlug>[] = [
  registryDefinition('civil_registry', 'Civil registry'),
  registryDefinition('health_registry', 'Health registry'),
];

// Names, most common first (the tables are drawn Zipf-like, so the first are much more common).
const NAMES: Record<UnseenCulture, { male: string[]; female: string[]; family: string[] }> = {
  vietnamese: {
    male: 'Minh Anh Duc Hung Tuan Long Nam Quang Thanh Hieu Khanh Phuc Bao Dung Hai Son Trung Vinh Cuong Dat Hoang Kien Loc Phong Tai Thang Toan Viet Huy Khoa'.split(
      ' ',
    ),
    female:
      'Linh Huong Lan Mai Ngoc Thao Trang Hoa Hanh Phuong Thu Yen Nhung Trinh Vy Chau Diep Giang Hien Kim Loan My Nga Oanh Quynh Tam Tuyet Uyen Xuan Dao'.split(
        ' ',
      ),
    family:
      'Nguyen Tran Le Pham Hoang Phan Vu Vo Dang Bui Do Ho Ngo Duong Ly Truong Dinh Lam Mai Trinh Luong Ha Cao Chau Quach Ton Kieu Thai Tang Lu La Thach Trieu Van Doan Khuc Giap Vuong Lieu Mac'.split(
        ' ',
      ),
  },
  arabic: {
    male: 'Mohammed Ahmed Ali Omar Youssef Hassan Khaled Ibrahim Mahmoud Mustafa Abdullah Karim Tariq Samir Nabil Walid Faisal Jamal Rami Ziad Bilal Hamza Adel Sami Majid Anwar Rashid Salim Hisham Amin'.split(
      ' ',
    ),
    female:
      'Fatima Aisha Maryam Layla Noor Zainab Huda Amira Rania Salma Yasmin Hana Lina Dalia Samira Nadia Rasha Mona Reem Dina Farah Iman Jamila Karima Leila Nour Sara Wafa Zahra Basma'.split(
        ' ',
      ),
    family:
      'Hassan Ali Mohamed Ahmed Ibrahim Mahmoud Abdallah Saleh Khalil Haddad Nasser Mansour Youssef Said Othman Farouk Hamdan Qasim Bakr Darwish Jaber Kassem Rahman Sabbagh Shami Taha Zaher Amari Barakat Daher Ghanem Hijazi Issa Jabari Kanaan Masri Najjar Qureshi Salem Tamimi'.split(
        ' ',
      ),
  },
  polish: {
    male: 'Piotr Krzysztof Andrzej Tomasz Pawel Michal Marcin Jakub Adam Lukasz Grzegorz Mateusz Wojciech Mariusz Dariusz Zbigniew Kamil Maciej Jerzy Rafal Robert Stanislaw Jacek Sebastian Janusz Szymon Kacper Bartosz Filip Dawid'.split(
      ' ',
    ),
    female:
      'Anna Maria Katarzyna Malgorzata Agnieszka Barbara Ewa Krystyna Magdalena Elzbieta Joanna Aleksandra Zofia Monika Teresa Danuta Natalia Julia Karolina Marta Beata Dorota Halina Jadwiga Janina Irena Grazyna Kinga Wiktoria Justyna'.split(
        ' ',
      ),
    family:
      'Nowak Kowalski Wisniewski Wojcik Kowalczyk Kaminski Lewandowski Zielinski Szymanski Wozniak Dabrowski Kozlowski Jankowski Mazur Kwiatkowski Krawczyk Piotrowski Grabowski Nowakowski Pawlowski Michalski Nowicki Adamczyk Dudek Zajac Wieczorek Jablonski Krol Majewski Olszewski Jaworski Wrobel Malinowski Pawlak Witkowski Walczak Stepien Gorski Rutkowski Michalak'.split(
        ' ',
      ),
  },
  yoruba: {
    male: 'Oluwaseun Adebayo Babatunde Olumide Adewale Oluwafemi Ayodele Olusegun Kayode Temitope Abiodun Adeyemi Akinola Damilola Femi Gbenga Ibukun Jide Kunle Lanre Olamide Rotimi Segun Tunde Wale Yemi Bode Dayo Kehinde Taiwo'.split(
      ' ',
    ),
    female:
      'Folake Funmilayo Adunni Abimbola Bukola Omolara Oluwakemi Titilayo Yetunde Ronke Bisola Morenike Adenike Omotola Iyabo Feyisara Jumoke Lola Modupe Ngozi Olufunke Sade Tolani Toyin Wuraola Yewande Ayomide Damilare Ebunoluwa Ifeoluwa'.split(
        ' ',
      ),
    family:
      'Adeyemi Ogunleye Adebayo Olawale Okonkwo Balogun Adeleke Ogunbiyi Afolabi Oladipo Akinwale Adewumi Bamidele Fashola Ibrahim Ajayi Oyelaran Olaniyan Adesanya Ogunsanya Alabi Akande Oyewole Oduya Olatunji Oshodi Adeniyi Oyinlola Ayoola Babalola Daramola Fagbemi Kolawole Lawal Makinde Obafemi Ojo Okafor Salako Taiwo'.split(
        ' ',
      ),
  },
};

// Spellings people and clerks really use for the same name: transliterations and dropped diacritics.
const VARIANTS: Record<string, string[]> = {
  Mohammed: ['Mohamed', 'Muhammad', 'Mohammad', 'Muhammed'],
  Mohamed: ['Mohammed', 'Muhammad'],
  Ahmed: ['Ahmad', 'Achmed'],
  Youssef: ['Yusuf', 'Yousef', 'Youcef'],
  Hassan: ['Hasan', 'Hassen'],
  Khaled: ['Khalid', 'Chaled'],
  Mahmoud: ['Mahmud', 'Mahmood'],
  Mustafa: ['Mostafa', 'Moustafa'],
  Abdullah: ['Abdallah', 'Abdulla'],
  Abdallah: ['Abdullah'],
  Fatima: ['Fatma', 'Fatimah'],
  Aisha: ['Aicha', 'Ayesha'],
  Maryam: ['Mariam', 'Meryem'],
  Layla: ['Leila', 'Laila'],
  Zainab: ['Zaynab', 'Zeinab'],
  Yasmin: ['Yasmine', 'Jasmin'],
  Qasim: ['Kassem', 'Kasim'],
  Nguyen: ['Nguyễn', 'Ngyuen', 'Nguen'],
  Tran: ['Trần'],
  Le: ['Lê'],
  Pham: ['Phạm', 'Fam'],
  Hoang: ['Hoàng', 'Huynh'],
  Vu: ['Võ', 'Vũ'],
  Duc: ['Đức', 'Duk'],
  Phuong: ['Phương', 'Fuong'],
  Huong: ['Hương'],
  Ngoc: ['Ngọc'],
  Wisniewski: ['Wiśniewski', 'Wisniewsky'],
  Wojcik: ['Wójcik', 'Woitschik'],
  Kowalczyk: ['Kovalchik'],
  Dabrowski: ['Dąbrowski', 'Dombrowski'],
  Kozlowski: ['Kozłowski', 'Koslowski'],
  Pawel: ['Paweł', 'Pavel'],
  Lukasz: ['Łukasz', 'Lucas'],
  Michal: ['Michał', 'Mikhal'],
  Malgorzata: ['Małgorzata', 'Malgozata'],
  Elzbieta: ['Elżbieta', 'Elsbieta'],
  Wojciech: ['Voytek', 'Wojtek'],
  Zajac: ['Zając', 'Zayonc'],
  Krol: ['Król'],
  Wrobel: ['Wróbel', 'Vrobel'],
  Oluwaseun: ['Seun', 'Oluseun'],
  Oluwafemi: ['Femi', 'Olufemi'],
  Olusegun: ['Segun'],
  Babatunde: ['Tunde'],
  Oluwakemi: ['Kemi'],
  Okonkwo: ['Okonkow'],
  Adeyemi: ['Adeyimi'],
  Ajayi: ['Ajai'],
};

// Letters a typist hits instead (the neighbours on a QWERTY keyboard).
const KEYBOARD: Record<string, string> = {
  a: 'qwsz',
  b: 'vghn',
  c: 'xdfv',
  d: 'serfcx',
  e: 'wsdr',
  f: 'drtgvc',
  g: 'ftyhbv',
  h: 'gyujnb',
  i: 'ujko',
  j: 'huikmn',
  k: 'jiolm',
  l: 'kop',
  m: 'njk',
  n: 'bhjm',
  o: 'iklp',
  p: 'ol',
  q: 'wa',
  r: 'edft',
  s: 'awedxz',
  t: 'rfgy',
  u: 'yhji',
  v: 'cfgb',
  w: 'qase',
  x: 'zsdc',
  y: 'tghu',
  z: 'asx',
};
const DIGIT_KEYS: Record<string, string> = {
  '0': '9',
  '1': '24',
  '2': '13',
  '3': '24',
  '4': '35',
  '5': '46',
  '6': '57',
  '7': '68',
  '8': '79',
  '9': '80',
};
// What an OCR engine reads for a letter or digit (and the reverse).
const OCR_LETTERS: [string, string][] = [
  ['rn', 'm'],
  ['m', 'rn'],
  ['cl', 'd'],
  ['d', 'cl'],
  ['li', 'h'],
  ['h', 'li'],
  ['vv', 'w'],
  ['w', 'vv'],
  ['e', 'c'],
  ['c', 'e'],
  ['i', 'l'],
  ['l', 'i'],
  ['u', 'v'],
  ['n', 'ri'],
  ['o', 'a'],
  ['a', 'o'],
];
const OCR_DIGITS: Record<string, string> = {
  '0': '8',
  '1': '7',
  '3': '8',
  '5': '6',
  '6': '5',
  '7': '1',
  '8': '3',
  '9': '4',
  '2': '7',
  '4': '9',
};
// Phonetic spellings that a clerk writing down a spoken name produces.
const PHONETIC: [RegExp, string][] = [
  [/ph/, 'f'],
  [/f/, 'ph'],
  [/ck/, 'k'],
  [/k/, 'c'],
  [/c(?=[aou])/, 'k'],
  [/y/, 'i'],
  [/i(?=[aeou])/, 'y'],
  [/ou/, 'u'],
  [/w/, 'v'],
  [/v/, 'w'],
  [/sz/, 'sh'],
  [/cz/, 'ch'],
  [/ee/, 'i'],
  [/([a-z])\1/, '$1'],
  [/([bdglmnprst])(?=[aeiou])/, '$1$1'],
];

const STREET_ROOTS =
  'Kerk Dorp Molen School Stations Haven Markt Linden Eiken Beuken Wilgen Rozen Tulpen Berk Vijver Brug Zuid Noord Oost West Park Heide Duin Akker Veld Bos Weide Kanaal Sluis Toren Poort Laan Bloemen Hooi Zand Klei Sterren Zon Maan Regen'.split(
    ' ',
  );
const STREET_KINDS = ['straat', 'weg', 'laan', 'plein', 'gracht', 'dijk', 'kade', 'singel'];
const STREET_KIND_ABBREVIATIONS: Record<string, string> = {
  straat: 'str',
  weg: 'wg',
  laan: 'ln',
  plein: 'pln',
};
const CITIES =
  'Rotterdam Amsterdam Utrecht Eindhoven Groningen Tilburg Almere Breda Nijmegen Apeldoorn Haarlem Arnhem Enschede Amersfoort Zaanstad Zwolle Leiden Maastricht Dordrecht Zoetermeer Deventer Delft Alkmaar Venlo Leeuwarden Helmond Hilversum Hengelo Purmerend Schiedam Vlaardingen Gouda Emmen Oss Assen Kampen Harderwijk Veenendaal Roosendaal Terneuzen'.split(
    ' ',
  );
/** A city as clerks write it otherwise: an old or local name, or its abbreviation. */
const CITY_VARIANTS: Record<string, string> = {
  Rotterdam: 'R dam',
  Amsterdam: 'Adam',
  Eindhoven: 'E hoven',
  Zaanstad: 'Zaandam',
  Haarlem: 'Harlem',
  Maastricht: 'Mastricht',
  Nijmegen: 'Nymegen',
  Leeuwarden: 'Ljouwert',
};

const GIVEN_TABLES = Object.fromEntries(
  UNSEEN_CULTURES.map((c) => [
    c,
    { M: WeightedTable.zipf(NAMES[c].male, 0.9, 2), F: WeightedTable.zipf(NAMES[c].female, 0.9, 2) },
  ]),
) as Record<UnseenCulture, Record<'M' | 'F', WeightedTable<string>>>;
const FAMILY_TABLES = Object.fromEntries(
  // Vietnamese family names are famously concentrated (Nguyen alone is a third); the others less so.
  UNSEEN_CULTURES.map((c) => [c, WeightedTable.zipf(NAMES[c].family, c === 'vietnamese' ? 1.4 : 0.8, 1.5)]),
) as Record<UnseenCulture, WeightedTable<string>>;
const CITY_TABLE = WeightedTable.zipf(CITIES, 1, 1);
const STREET_TABLE = WeightedTable.zipf(STREET_ROOTS, 0.6, 2);

const ID_SPACE = 676_000_000n;
const ID_MULTIPLIER = 387_420_489n; // 3^18, coprime with 2^6 · 5^6 · 13^2

const BIRTH_FIRST = dayNumber(1940, 1, 1);
const BIRTH_LAST = dayNumber(2007, 12, 31);

/** Noise rates per record, before the `noise` multiplier. */
const RATES = {
  nameKeyboard: 0.06,
  nameOcr: 0.04,
  nameTransposition: 0.03,
  namePhonetic: 0.06,
  nameSwap: 0.06,
  givenInitial: 0.03,
  givenMissing: 0.02,
  dobDigit: 0.05,
  dobTransposition: 0.02,
  dobDayMonthSwap: 0.02,
  dobReplaced: 0.03,
  dobMissing: 0.05,
  idDigit: 0.05,
  idTransposition: 0.02,
  idReplaced: 0.02,
  idMissing: 0.2,
  postcodeDigit: 0.04,
  postcodeReplaced: 0.08,
  postcodeMissing: 0.08,
  addressTypo: 0.08,
  addressMissing: 0.1,
  cityVariant: 0.05,
  cityMissing: 0.08,
  sexWrong: 0.01,
  sexMissing: 0.04,
} satisfies Record<UnseenNoiseKind, number>;

/** A person, drawn from a stream of their own. */
function drawPerson(seed: number | string, index: number, idSalt: number): UnseenPerson {
  const random = new SeededRandom(seed, index * 2);
  const culture = UNSEEN_CULTURES[random.int(0, UNSEEN_CULTURES.length - 1)];
  const sex = random.chance(0.5) ? 'F' : 'M';
  const city = CITY_TABLE.draw(random);
  const cityIndex = CITIES.indexOf(city);
  // A city owns a run of postcodes, so the postcode and the city agree as they do in life.
  const postcodeNumber = 1000 + ((cityIndex * 211) % 8800) + random.int(0, 199);
  const postcodeLetters =
    String.fromCharCode(65 + random.int(0, 23)) + String.fromCharCode(65 + random.int(0, 23));
  // Ids: index × a multiplier coprime with 676,000,000, offset by the seed, is a bijection onto the
  // id space, so no two people share one.
  const idValue = Number((BigInt(index) * ID_MULTIPLIER + BigInt(idSalt)) % ID_SPACE);
  const scrambledId = idValue % 1_000_000;
  const letters = Math.floor(idValue / 1_000_000);
  return {
    index,
    culture,
    sex,
    givenName: GIVEN_TABLES[culture][sex].draw(random),
    familyName: FAMILY_TABLES[culture].draw(random),
    dob: formatDay(random.int(BIRTH_FIRST, BIRTH_LAST)),
    nationalId:
      String.fromCharCode(65 + Math.floor(letters / 26)) +
      String.fromCharCode(65 + (letters % 26)) +
      String(scrambledId).padStart(6, '0'),
    postcode: `${postcodeNumber} ${postcodeLetters}`,
    street: `${STREET_TABLE.draw(random)}${random.pick(STREET_KINDS)} ${random.int(1, 240)}`,
    city,
  };
}

/** One character replaced by a keyboard neighbour. */
function keyboardTypo(random: SeededRandom, text: string): string {
  if (text.length === 0) return text;
  const at = random.int(0, text.length - 1);
  const ch = text[at];
  const lower = ch.toLowerCase();
  const near = KEYBOARD[lower] ?? DIGIT_KEYS[ch];
  if (!near) return text;
  let replacement = random.pick([...near]);
  if (ch !== lower) replacement = replacement.toUpperCase();
  return text.slice(0, at) + replacement + text.slice(at + 1);
}

/** One OCR misreading of a letter group, or, failing that, a keyboard typo. */
function ocrTypo(random: SeededRandom, text: string): string {
  const lower = text.toLowerCase();
  const candidates = OCR_LETTERS.filter(([from]) => lower.includes(from, 1));
  if (candidates.length === 0) return keyboardTypo(random, text);
  const [from, to] = random.pick(candidates);
  const at = lower.indexOf(from, 1);
  const replaced = lower.slice(0, at) + to + lower.slice(at + from.length);
  return text === text.toUpperCase() ? replaced.toUpperCase() : capitalise(replaced);
}

/** Two adjacent characters exchanged. */
function transpose(random: SeededRandom, text: string): string {
  if (text.length < 2) return text;
  const at = random.int(0, text.length - 2);
  return text.slice(0, at) + text[at + 1] + text[at] + text.slice(at + 2);
}

/** A phonetic spelling or a known transliteration. */
function phoneticVariant(random: SeededRandom, name: string): string {
  const known = VARIANTS[name];
  if (known && random.chance(0.7)) return random.pick(known);
  const lower = name.toLowerCase();
  const rules = PHONETIC.filter(([pattern]) => pattern.test(lower.slice(1)));
  if (rules.length === 0) return name;
  const [pattern, replacement] = random.pick(rules);
  return capitalise(lower[0] + lower.slice(1).replace(pattern, replacement));
}

const capitalise = (text: string) => (text ? text[0].toUpperCase() + text.slice(1).toLowerCase() : text);

/** A digit replaced: by a key next to it, or by what an OCR engine reads it as. */
function digitTypo(random: SeededRandom, text: string, positions: number[]): string {
  const at = random.pick(positions);
  const ch = text[at];
  const table = random.chance(0.5) ? DIGIT_KEYS[ch] : OCR_DIGITS[ch];
  if (!table) return text;
  return text.slice(0, at) + random.pick([...table]) + text.slice(at + 1);
}

/** Adjacent digits exchanged (both must be digits). */
function digitTransposition(random: SeededRandom, text: string, positions: number[]): string {
  const pairs = positions.filter((p) => positions.includes(p + 1) && text[p] !== text[p + 1]);
  if (pairs.length === 0) return text;
  const at = random.pick(pairs);
  return text.slice(0, at) + text[at + 1] + text[at] + text.slice(at + 2);
}

const digitPositions = (text: string) => [...text].flatMap((ch, i) => (ch >= '0' && ch <= '9' ? [i] : []));

/** A DATE value must be a real date: a typo that makes an impossible one is tried again, or dropped. */
function validDate(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (year < 1900 || year > 2025 || month < 1 || month > 12 || day < 1) return false;
  const c = civilDate(dayNumber(year, month, day));
  return c.year === year && c.month === month && c.day === day;
}

function noisyDate(random: SeededRandom, dob: string, kind: 'digit' | 'transposition'): string | null {
  for (let attempt = 0; attempt < 8; attempt++) {
    const positions = digitPositions(dob);
    const changed =
      kind === 'digit' ? digitTypo(random, dob, positions) : digitTransposition(random, dob, positions);
    if (changed !== dob && validDate(changed)) return changed;
  }
  return null;
}

interface RecordNoise {
  tally: UnseenNoiseTally;
  scale: number;
}

/** One record of `person`, drawn from a stream of its own, with the noise counted in `noise`. */
function drawRecord(
  person: UnseenPerson,
  stream: SeededRandom,
  noise: RecordNoise,
  other: () => UnseenPerson,
): UnseenRecord {
  const hit = (kind: UnseenNoiseKind): boolean => {
    if (!stream.chance(RATES[kind] * noise.scale)) return false;
    noise.tally[kind]++;
    return true;
  };
  const upper = stream.chance(0.5);
  const noisyName = (name: string): string => {
    if (hit('namePhonetic')) name = phoneticVariant(stream, name);
    if (hit('nameKeyboard')) name = keyboardTypo(stream, name);
    if (hit('nameOcr')) name = ocrTypo(stream, name);
    if (hit('nameTransposition')) name = transpose(stream, name);
    return name;
  };
  let given: string | null = noisyName(person.givenName);
  let family: string | null = noisyName(person.familyName);
  if (hit('givenInitial')) given = given[0];
  else if (hit('givenMissing')) given = null;
  if (hit('nameSwap')) [given, family] = [family, given];

  let dob: string | null = person.dob;
  if (hit('dobMissing')) dob = null;
  else if (hit('dobReplaced')) dob = other().dob;
  else {
    if (hit('dobDigit')) dob = noisyDate(stream, dob, 'digit');
    if (dob && hit('dobTransposition')) dob = noisyDate(stream, dob, 'transposition');
    if (dob && hit('dobDayMonthSwap')) {
      const swapped = `${dob.slice(0, 4)}-${dob.slice(8, 10)}-${dob.slice(5, 7)}`;
      if (validDate(swapped)) dob = swapped;
    }
  }

  let id: string | null = person.nationalId;
  if (hit('idMissing')) id = null;
  else if (hit('idReplaced')) id = other().nationalId;
  else {
    if (hit('idDigit')) id = digitTypo(stream, id, digitPositions(id));
    if (hit('idTransposition')) id = digitTransposition(stream, id, digitPositions(id));
    // Clerks write it with a space, a dash or lower case now and then.
    if (stream.chance(0.2)) id = `${id.slice(0, 2)}-${id.slice(2)}`;
    else if (stream.chance(0.1)) id = id.toLowerCase();
  }

  let postcode: string | null = person.postcode;
  if (hit('postcodeMissing')) postcode = null;
  else if (hit('postcodeReplaced')) postcode = other().postcode;
  else {
    if (hit('postcodeDigit')) postcode = digitTypo(stream, postcode, [0, 1, 2, 3]);
    if (stream.chance(0.3)) postcode = postcode.replace(' ', '');
  }

  let street: string | null = person.street;
  if (hit('addressMissing')) street = null;
  else {
    for (const [kind, short] of Object.entries(STREET_KIND_ABBREVIATIONS))
      if (stream.chance(0.3)) street = street.replace(kind, short);
    if (hit('addressTypo'))
      street = stream.chance(0.5) ? keyboardTypo(stream, street) : transpose(stream, street);
  }

  let city: string | null = person.city;
  if (hit('cityMissing')) city = null;
  else if (hit('cityVariant')) city = CITY_VARIANTS[city] ?? keyboardTypo(stream, city);

  let sex: string | null = person.sex;
  if (hit('sexMissing')) sex = null;
  else if (hit('sexWrong')) sex = sex === 'F' ? 'M' : 'F';
  else if (stream.chance(0.3)) sex = sex === 'F' ? 'female' : 'male';

  const style = (text: string | null) => (text === null ? null : upper ? text.toUpperCase() : text);
  return {
    record_id: '',
    given_name: style(given),
    family_name: style(family),
    birth_date: dob,
    gender: sex,
    national_id: id,
    postcode,
    street: style(street),
    town: style(city),
  };
}

const emptyTally = (): UnseenNoiseTally =>
  Object.fromEntries(UNSEEN_NOISE_KINDS.map((k) => [k, 0])) as UnseenNoiseTally;

/**
 * The population: each person is in the civil registry (80%), the health registry (all the others
 * and three in four of those, so 60% are in both), and a fifth of them twice in the same registry.
 */
export function generateUnseenPopulation(options: UnseenPopulationOptions): UnseenPopulation {
  const { seed, people: count } = options;
  const scale = options.noise ?? 1;
  const idSalt = mix32(typeof seed === 'number' ? seed : seed.length * 7919);
  const people: UnseenPerson[] = [];
  for (let i = 0; i < count; i++) people.push(drawPerson(seed, i, idSalt));
  const datasets = UNSEEN_DATASETS.map((definition) => ({
    slug: definition.slug,
    definition,
    records: [] as UnseenRecord[],
    truth: [] as number[],
  }));
  const noise = { civil_registry: emptyTally(), health_registry: emptyTally() };
  for (const person of people) {
    const stream = new SeededRandom(seed, person.index * 2 + 1);
    const inCivil = stream.chance(0.8);
    const inHealth = !inCivil || stream.chance(0.75);
    const other = () => people[stream.int(0, people.length - 1)];
    for (const [d, present] of [
      [0, inCivil],
      [1, inHealth],
    ] as const) {
      if (!present) continue;
      const copies = stream.chance(0.2) ? 2 : 1;
      const dataset = datasets[d];
      for (let k = 0; k < copies; k++) {
        const record = drawRecord(person, stream, { tally: noise[dataset.slug], scale }, other);
        // The key says nothing of the person: a scramble of (person, registry, copy).
        record.record_id = `${d === 0 ? 'C' : 'H'}${mix32((person.index * 4 + d * 2 + k) ^ idSalt).toString(36)}`;
        dataset.records.push(record);
        dataset.truth.push(person.index);
      }
    }
  }
  return { people, datasets, noise };
}
