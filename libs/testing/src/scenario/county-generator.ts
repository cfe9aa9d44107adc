/**
 * The synthetic county: people, and the records four agencies keep about the ones who pass through
 * the justice system, with the identifier noise that makes linking them hard. Deterministic: each
 * person is drawn from a random stream of their own (seed, index), so a person and their records
 * do not depend on how many people are generated, and the same seed always gives the same county.
 *
 * @example
 * const county = generateCounty({ seed: 42, people: 2000 });
 * const bookings = county.datasets.find((d) => d.slug === 'jail_bookings')!;
 * bookings.records[0].last_name; // 'GARCIA'; bookings.truth[0] is the index of that person
 */
import { ageOn, civilDate, dayNumber, formatDay, parseDay } from './civil-date';
import {
  COUNTY_DATASETS,
  type CountyDatasetSlug,
  type ScenarioDataset,
  countyDataset,
} from './county-datasets';
import {
  type NameStyle,
  dateTypo,
  formatSsn,
  hasNickname,
  nicknameOf,
  ssnTypo,
  styleName,
  swapDayMonth,
  withTypo,
} from './identifier-noise';
import {
  COUNTY_ZIPS,
  ENGLISH_FEMALE_NAMES,
  ENGLISH_MALE_NAMES,
  ENGLISH_SURNAMES,
  SPANISH_FEMALE_NAMES,
  SPANISH_MALE_NAMES,
  SPANISH_SURNAMES,
} from './name-tables';
import {
  NOISE_KINDS,
  NOISE_PROFILES,
  type NoiseKind,
  type NoiseProfile,
  type NoiseTally,
  emptyTally,
} from './noise-profiles';
import { SeededRandom, WeightedTable, hashSeed, mix32 } from './seeded-random';

/** Who passes through which agency. */
export interface ParticipationRates {
  /** Share of all people with at least one jail booking. */
  booked: number;
  /** Share of booked people with at least one court case. */
  charged: number;
  /** Share of charged people who are put on probation. */
  supervised: number;
  /** Share of booked people who enroll in the CBO's re-entry program. */
  enrolled: number;
}

export const DEFAULT_RATES: Readonly<ParticipationRates> = {
  booked: 0.7,
  charged: 0.5,
  supervised: 0.3,
  enrolled: 0.15,
};

/** What {@link generateCounty} and {@link countyRows} take. */
export interface CountyOptions {
  seed: number | string;
  /** How many people live in the county (not all of them have records). */
  people: number;
  rates?: Partial<ParticipationRates>;
  /** Multiplies every noise rate: 0 gives clean identifiers (only the agencies' styles differ), 2 twice the noise. */
  noise?: number;
  /** The day the extracts are taken, 'YYYY-MM-DD'; nothing happens after it. Default 2025-06-30. */
  asOf?: string;
}

/** A synthetic person: the truth behind the records. */
export interface SyntheticPerson {
  index: number;
  firstName: string;
  middleName: string | null;
  lastName: string;
  sex: 'F' | 'M';
  /** 'YYYY-MM-DD' */
  dob: string;
  /** 'NNN-NN-NNNN', unique in the county. */
  ssn: string;
  zip: string;
  /** A last name taken later (marriage), replacing or hyphenated onto the first, from `since`. */
  marriedName: { lastName: string; since: string } | null;
}

/** A record as a provider would upload it: field name → value (null for missing). */
export type CountyRecord = Record<string, string | number | boolean | null>;

/** One record of the stream, with the index of the person it is about. */
export interface CountyRow {
  slug: CountyDatasetSlug;
  record: CountyRecord;
  truth: number;
}

/** One dataset of the county: its definition, its records, and for each record its person's index. */
export interface CountyDatasetRecords {
  slug: CountyDatasetSlug;
  definition: ScenarioDataset<CountyDatasetSlug>;
  records: CountyRecord[];
  /** `truth[i]` is the index in `people` of the person `records[i]` is about. */
  truth: number[];
}

/** The whole county. */
export interface County {
  people: SyntheticPerson[];
  datasets: CountyDatasetRecords[];
  /** Per dataset, how much noise went into its records. */
  noise: Record<CountyDatasetSlug, NoiseTally>;
}

const DEFAULT_AS_OF = '2025-06-30';
const WINDOW_START = dayNumber(2018, 1, 1);
/** At most this many bookings per person: ids are scrambled from index × 16 + k, so k must stay below 16. */
const MAX_BOOKINGS = 12;
const MAX_PEOPLE = 2 ** 28 - 1;

const MALE_FIRST = { en: WeightedTable.zipf(ENGLISH_MALE_NAMES), es: WeightedTable.zipf(SPANISH_MALE_NAMES) };
const FEMALE_FIRST = {
  en: WeightedTable.zipf(ENGLISH_FEMALE_NAMES),
  es: WeightedTable.zipf(SPANISH_FEMALE_NAMES),
};
const SURNAMES = {
  en: WeightedTable.zipf(ENGLISH_SURNAMES, 0.8),
  es: WeightedTable.zipf(SPANISH_SURNAMES, 0.8),
};
const ZIPS = WeightedTable.zipf(COUNTY_ZIPS, 0.7, 1);

const CHARGES = new WeightedTable(
  ['PROPERTY', 'DRUG', 'VIOLENT', 'PUBLIC_ORDER', 'DUI', 'WEAPONS', 'OTHER'],
  [28, 22, 15, 15, 12, 5, 3],
);
const FELONY_SHARE: Record<string, number> = {
  PROPERTY: 0.35,
  DRUG: 0.4,
  VIOLENT: 0.6,
  PUBLIC_ORDER: 0.1,
  DUI: 0.1,
  WEAPONS: 0.6,
  OTHER: 0.2,
};
const DISPOSITIONS = new WeightedTable(
  ['GUILTY_PLEA', 'CONVICTED', 'DISMISSED', 'ACQUITTED', 'DIVERTED'],
  [55, 7, 25, 3, 10],
);
const PROGRAMS = new WeightedTable(
  [
    'Employment Readiness',
    'Housing Navigation',
    'Cognitive Behavioral Therapy',
    'Peer Mentoring',
    'Substance Use Recovery',
  ],
  [30, 20, 20, 15, 15],
);

// Salts that make each agency's ids a different scramble of the same counters.
const SALT = {
  bookingId: 0x1b873593,
  personId: 0x27d4eb2f,
  caseId: 0x165667b1,
  defendantId: 0x61c88647,
  supervisionId: 0x7a3c5f21,
  clientId: 0x3c6ef372,
  enrollmentId: 0x5be0cd19,
  participantId: 0x1f83d9ab,
};

/** A scrambled, collision-free id for counter `k` of person `index` (k = 0 is the person's own id). */
function scrambled(seedHash: number, salt: number, index: number, k: number): number {
  return mix32(((index * 16 + k) ^ salt ^ seedHash) >>> 0);
}
const BASE36 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** Seven base-36 digits of a 32-bit number (Number#toString(36) is several times slower). */
function base36(n: number): string {
  let text = '';
  for (let i = 0; i < 7; i++) {
    text = BASE36[n % 36] + text;
    n = Math.floor(n / 36);
  }
  return text;
}
const decimal = (n: number) => String(n).padStart(10, '0');

// SSNs: a bijection from the person index onto valid numbers (area 001-899 but not 666, group
// 01-99, serial 0001-9999), so no two people share one however many are generated.
const SSN_SPACE = 898 * 99 * 9999;
const SSN_MULTIPLIER = 876_573_565; // coprime with SSN_SPACE (2·3⁴·11²·101·449)

function ssnDigits(seedHash: number, index: number): string {
  const offset = seedHash % SSN_SPACE;
  const k =
    (((SSN_MULTIPLIER * Math.floor(index / 65536)) % SSN_SPACE) * 65536 +
      SSN_MULTIPLIER * (index % 65536) +
      offset) %
    SSN_SPACE;
  let area = Math.floor(k / (99 * 9999)) + 1;
  if (area >= 666) area++;
  const group = (Math.floor(k / 9999) % 99) + 1;
  const serial = (k % 9999) + 1;
  return `${String(area).padStart(3, '0')}${String(group).padStart(2, '0')}${String(serial).padStart(4, '0')}`;
}

interface ResolvedOptions {
  seed: number | string;
  seedHash: number;
  people: number;
  rates: ParticipationRates;
  noise: number;
  asOf: number;
}

function resolve(options: CountyOptions): ResolvedOptions {
  const people = options.people;
  if (!Number.isInteger(people) || people < 0 || people > MAX_PEOPLE) {
    throw new Error(`people must be an integer from 0 to ${MAX_PEOPLE}`);
  }
  const noise = options.noise ?? 1;
  if (!(noise >= 0)) throw new Error('noise must be 0 or more');
  const rates = { ...DEFAULT_RATES, ...options.rates };
  for (const [name, rate] of Object.entries(rates)) {
    if (!(rate >= 0 && rate <= 1)) throw new Error(`rates.${name} must be between 0 and 1`);
  }
  return {
    seed: options.seed,
    seedHash: hashSeed(options.seed),
    people,
    rates,
    noise,
    asOf: parseDay(options.asOf ?? DEFAULT_AS_OF),
  };
}

/** The person at `index` of the county of `seed`: the same whatever the county's size. */
export function syntheticPerson(
  options: Pick<CountyOptions, 'seed' | 'asOf'>,
  index: number,
): SyntheticPerson {
  const resolved = resolve({ ...options, people: index + 1 });
  return drawPerson(resolved, index, new SeededRandom(resolved.seed, index)).person;
}

interface DrawnPerson {
  person: SyntheticPerson;
  birth: number;
  marriedSince: number;
}

function drawPerson(options: ResolvedOptions, index: number, random: SeededRandom): DrawnPerson {
  const spanish = random.chance(0.35);
  const sex = random.chance(0.72) ? 'M' : 'F';
  const origin = (sameOrigin: number) => (random.chance(sameOrigin) === spanish ? 'es' : 'en');
  const given = sex === 'M' ? MALE_FIRST : FEMALE_FIRST;
  const firstName = given[origin(spanish ? 0.85 : 0.97)].draw(random);
  let middleName: string | null = null;
  if (random.chance(0.85)) {
    for (let attempt = 0; attempt < 4 && (middleName === null || middleName === firstName); attempt++) {
      middleName = given[origin(spanish ? 0.9 : 0.97)].draw(random);
    }
    if (middleName === firstName) middleName = null;
  }
  const lastName = SURNAMES[origin(spanish ? 0.9 : 0.95)].draw(random);
  // Ages at the extract date: 19 to 75, most in their twenties and thirties.
  const age = 19 + Math.min(56, Math.floor(random.exponential(13)));
  const birth = options.asOf - Math.floor((age + random.next()) * 365.2425);
  const zip = ZIPS.draw(random);

  let marriedName: SyntheticPerson['marriedName'] = null;
  let marriedSince = Infinity;
  if (random.chance(sex === 'F' ? 0.12 : 0.015)) {
    const adult = birth + Math.ceil(18 * 365.2425);
    const since = Math.max(adult, options.asOf - random.int(30, 8 * 365));
    if (since < options.asOf) {
      let spouse = SURNAMES[origin(spanish ? 0.8 : 0.9)].draw(random);
      for (let attempt = 0; attempt < 4 && spouse === lastName; attempt++) spouse = SURNAMES.en.draw(random);
      if (spouse === lastName) spouse = lastName === 'Ellis' ? 'Moss' : 'Ellis';
      marriedName = {
        lastName: random.chance(0.35) ? `${lastName}-${spouse}` : spouse,
        since: formatDay(since),
      };
      marriedSince = since;
    }
  }
  return {
    person: {
      index,
      firstName,
      middleName,
      lastName,
      sex,
      dob: formatDay(birth),
      ssn: formatSsn(ssnDigits(options.seedHash, index)),
      zip,
      marriedName,
    },
    birth,
    marriedSince,
  };
}

/** The identity one record shows: the person as one agency wrote them down on one day. */
interface Observed {
  first: string;
  middle: string | null;
  last: string;
  dob: string | null;
  recordedBirth: number | null;
  sex: string | null;
  ssn: string | null;
  zip: string;
  alias: boolean;
}

// Noise kinds by number: the per-record hot path indexes typed arrays rather than keyed objects.
const KIND = Object.fromEntries(NOISE_KINDS.map((kind, i) => [kind, i])) as Record<NoiseKind, number>;

interface ObservedDataset {
  profile: NoiseProfile;
  styles: WeightedTable<NameStyle>;
  rates: Float64Array;
  eligible: Float64Array;
  applied: Float64Array;
  records: number;
}

/** Writes identities as the agencies record them, and counts the noise it adds. */
class Observer {
  private readonly datasets: Record<CountyDatasetSlug, ObservedDataset>;
  private current!: ObservedDataset;
  private random!: SeededRandom;

  constructor(noise: number) {
    this.datasets = Object.fromEntries(
      COUNTY_DATASETS.map(({ slug }) => {
        const profile = NOISE_PROFILES[slug];
        const rates = new Float64Array(NOISE_KINDS.length);
        NOISE_KINDS.forEach((kind, i) => (rates[i] = Math.min(1, (profile.rates[kind] ?? 0) * noise)));
        const styles = new WeightedTable(
          profile.styles.map(([style]) => style),
          profile.styles.map(([, weight]) => weight),
        );
        const counts = () => new Float64Array(NOISE_KINDS.length);
        return [slug, { profile, styles, rates, eligible: counts(), applied: counts(), records: 0 }];
      }),
    ) as Record<CountyDatasetSlug, ObservedDataset>;
  }

  /** Adds the counts so far to `tallies` and starts counting afresh. */
  flush(tallies: Record<CountyDatasetSlug, NoiseTally>) {
    for (const [slug, observed] of Object.entries(this.datasets) as [CountyDatasetSlug, ObservedDataset][]) {
      const tally = tallies[slug];
      tally.records += observed.records;
      observed.records = 0;
      NOISE_KINDS.forEach((kind, i) => {
        tally.eligible[kind] += observed.eligible[i];
        tally.applied[kind] += observed.applied[i];
      });
      observed.eligible.fill(0);
      observed.applied.fill(0);
    }
  }

  /** Draws whether a noise applies to an eligible record, and counts both. */
  private roll(kind: number): boolean {
    const rate = this.current.rates[kind];
    if (rate <= 0) return false;
    this.current.eligible[kind]++;
    const hit = this.random.chance(rate);
    if (hit) this.current.applied[kind]++;
    return hit;
  }

  observe(
    slug: CountyDatasetSlug,
    drawn: DrawnPerson,
    day: number,
    random: SeededRandom,
    has: IdentityFields,
  ): Observed {
    const observed = this.datasets[slug];
    const { profile, styles } = observed;
    this.current = observed;
    this.random = random;
    observed.records++;
    const person = drawn.person;

    let last = person.lastName;
    if (person.marriedName && day >= drawn.marriedSince && this.roll(KIND.MARRIED_NAME))
      last = person.marriedName.lastName;
    let first = person.firstName;
    if (hasNickname(first) && this.roll(KIND.NICKNAME)) first = nicknameOf(first, random) ?? first;
    if (this.roll(KIND.FIRST_NAME_TYPO)) first = withTypo(first, random).value;
    if (this.roll(KIND.LAST_NAME_TYPO)) last = withTypo(last, random).value;

    let middle: string | null = null;
    if (has.middle && person.middleName !== null) {
      if (!this.roll(KIND.MIDDLE_NAME_MISSING)) {
        middle = person.middleName;
        if (this.roll(KIND.MIDDLE_INITIAL))
          middle = middle[0] + (random.chance(profile.initialPeriod) ? '.' : '');
      }
    }

    let dob: string | null = person.dob;
    let recordedBirth: number | null = drawn.birth;
    if (has.dobOptional && this.roll(KIND.DOB_MISSING)) {
      dob = null;
      recordedBirth = null;
    } else {
      const { year, month, day: dayOfMonth } = civilDate(drawn.birth);
      const swapped = swapDayMonth(year, month, dayOfMonth);
      if (swapped && this.roll(KIND.DOB_SWAP)) dob = swapped;
      else if (this.roll(KIND.DOB_TYPO)) dob = dateTypo(year, month, dayOfMonth, random);
      if (dob !== person.dob) recordedBirth = parseDay(dob);
    }

    let ssn: string | null = null;
    if (has.ssn && !this.roll(KIND.SSN_MISSING)) {
      let digits = person.ssn.replace(/-/g, '');
      if (this.roll(KIND.SSN_TYPO)) digits = ssnTypo(digits, random);
      ssn = random.chance(profile.ssnDashes) ? formatSsn(digits) : digits;
    }

    let sex: string | null = null;
    if (has.sex && !this.roll(KIND.SEX_MISSING)) {
      sex = profile.sex === 'LETTER' ? person.sex : person.sex === 'M' ? 'Male' : 'Female';
    }

    let zip = person.zip;
    if (has.zip && this.roll(KIND.ZIP_MOVED)) {
      zip = ZIPS.draw(random);
      if (zip === person.zip) zip = COUNTY_ZIPS[(COUNTY_ZIPS.indexOf(zip) + 1) % COUNTY_ZIPS.length];
    }

    const style = styles.draw(random);
    return {
      first: styleName(first, style),
      middle: middle === null ? null : styleName(middle, style),
      last: styleName(last, style),
      dob,
      recordedBirth,
      sex,
      ssn,
      zip,
      alias: this.roll(KIND.ALIAS_SUBJECT_ID),
    };
  }
}

/** Which identity fields each dataset records (and whether its date of birth may be missing). */
interface IdentityFields {
  middle: boolean;
  ssn: boolean;
  sex: boolean;
  zip: boolean;
  dobOptional: boolean;
}
const IDENTITY_FIELDS: Record<CountyDatasetSlug, IdentityFields> = {
  jail_bookings: { middle: true, ssn: true, sex: true, zip: true, dobOptional: false },
  court_cases: { middle: true, ssn: true, sex: true, zip: false, dobOptional: false },
  probation_supervision: { middle: true, ssn: false, sex: false, zip: false, dobOptional: false },
  reentry_participation: { middle: false, ssn: false, sex: false, zip: true, dobOptional: true },
};

interface Booking {
  day: number;
  release: number;
  category: string;
  felony: boolean;
}

/**
 * Every record of the county, person by person, without holding the county in memory: the way to
 * produce a million records for a benchmark. Records come in person order (see
 * {@link generateCounty} for datasets sorted by date). Pass `tallies` to count the noise.
 */
export function* countyRows(
  options: CountyOptions,
  tallies: Record<CountyDatasetSlug, NoiseTally> = emptyTallies(),
): Generator<CountyRow, void, undefined> {
  const resolved = resolve(options);
  const observer = new Observer(resolved.noise);
  try {
    for (let index = 0; index < resolved.people; index++) {
      yield* personRows(resolved, observer, index, null);
    }
  } finally {
    // Also when the consumer stops early: the tallies then count the records it was given.
    observer.flush(tallies);
  }
}

/** A fresh tally per dataset. */
export function emptyTallies(): Record<CountyDatasetSlug, NoiseTally> {
  return Object.fromEntries(COUNTY_DATASETS.map((d) => [d.slug, emptyTally()])) as Record<
    CountyDatasetSlug,
    NoiseTally
  >;
}

function* personRows(
  options: ResolvedOptions,
  observer: Observer,
  index: number,
  people: SyntheticPerson[] | null,
): Generator<CountyRow, void, undefined> {
  const random = new SeededRandom(options.seed, index);
  const drawn = drawPerson(options, index, random);
  people?.push(drawn.person);
  const { rates, asOf, seedHash } = options;
  // Participation is drawn whether or not it applies, so a person's later draws do not depend on
  // the rates of earlier stages more than they must.
  const booked = random.chance(rates.booked);
  const charged = random.chance(rates.charged);
  const supervised = charged && random.chance(rates.supervised);
  // The CBO takes referrals from probation: enrollment is likelier under supervision, and the
  // rate for everyone else is set so that `enrolled` of the booked enroll overall.
  const supervisedShare = rates.charged * rates.supervised;
  const enrollUnderSupervision = Math.min(1, rates.enrolled * 2);
  const enrollOtherwise =
    supervisedShare < 1
      ? Math.max(0, (rates.enrolled - supervisedShare * enrollUnderSupervision) / (1 - supervisedShare))
      : 0;
  const enrolled = random.chance(supervised ? enrollUnderSupervision : enrollOtherwise);
  const propensity = random.next();
  if (!booked) return;

  const n = (value: number) => Math.round(value);
  const adult = drawn.birth + Math.ceil(18 * 365.2425);
  const earliest = Math.max(WINDOW_START, adult);
  const latest = asOf - 120;
  if (earliest > latest) return;

  // Bookings, with re-entry enrollment after the first release; completing the program halves
  // the rate of re-booking, the effect a recidivism evaluation should find.
  const bookings: Booking[] = [];
  let enrollment: {
    day: number;
    completed: boolean;
    program: string;
    services: number;
    /** Issue 13: the day the program ends (completed or not), from the length already drawn. */
    end: number;
  } | null = null;
  let day = random.int(earliest, latest);
  while (bookings.length < MAX_BOOKINGS && day <= asOf) {
    const stayRoll = random.next();
    const stay =
      stayRoll < 0.55 ? random.int(0, 2) : stayRoll < 0.85 ? random.int(3, 30) : random.int(31, 365);
    const category = CHARGES.draw(random);
    bookings.push({ day, release: day + stay, category, felony: random.chance(FELONY_SHARE[category]) });
    if (enrolled && !enrollment && bookings.length === 1) {
      const start = day + stay + random.int(7, 120);
      if (start <= asOf) {
        const length = random.int(90, 180);
        const completed = start + length <= asOf && random.chance(0.7 - 0.3 * propensity);
        enrollment = {
          day: start,
          completed,
          program: PROGRAMS.draw(random),
          services: 0,
          end: start + length,
        };
        enrollment.services = completed ? random.int(12, 40) : random.int(1, 15);
      }
    }
    let gapMean = 2000 / (0.4 + 1.6 * propensity);
    if (enrollment?.completed && day + stay >= enrollment.day) gapMean *= 2;
    day = day + stay + 30 + n(random.exponential(gapMean));
  }

  for (let k = 0; k < bookings.length; k++) {
    const b = bookings[k];
    const seen = observer.observe('jail_bookings', drawn, b.day, random, IDENTITY_FIELDS.jail_bookings);
    const personId = scrambled(seedHash, SALT.personId, index, seen.alias ? k + 1 : 0);
    yield {
      slug: 'jail_bookings',
      truth: index,
      record: {
        booking_id: `BK-${base36(scrambled(seedHash, SALT.bookingId, index, k))}`,
        person_id: `SO${decimal(personId)}`,
        first_name: seen.first,
        middle_name: seen.middle,
        last_name: seen.last,
        dob: seen.dob,
        sex: seen.sex,
        ssn: seen.ssn,
        zip: seen.zip,
        booking_date: formatDay(b.day),
        charge_category: b.category,
        charge_severity: b.felony ? 'FELONY' : 'MISDEMEANOR',
        age_at_booking: seen.recordedBirth === null ? null : ageOn(seen.recordedBirth, b.day),
        released: b.release <= asOf,
        // Issue 13: the day of release, once released (no random draw: the stay drawn already).
        release_date: b.release <= asOf ? formatDay(b.release) : null,
      },
    };
  }

  // Court cases: the first booking always, later ones often. A supervised person's first case
  // ends in a guilty plea early enough for probation to start before the extract date.
  let probationAfter: number | null = null;
  if (charged) {
    for (let k = 0; k < bookings.length; k++) {
      if (k > 0 && !random.chance(0.6)) continue;
      const b = bookings[k];
      const filing = Math.min(asOf, b.day + random.int(0, 14));
      const forced = supervised && probationAfter === null;
      let lag = random.int(30, 365);
      if (forced) lag = Math.min(lag, Math.max(1, asOf - filing - 31));
      const decided = filing + lag <= asOf;
      const disposition = forced ? 'GUILTY_PLEA' : decided ? DISPOSITIONS.draw(random) : null;
      const guilty = disposition === 'GUILTY_PLEA' || disposition === 'CONVICTED';
      let sentence: number | null = null;
      if (guilty) {
        sentence = b.felony
          ? random.chance(0.35)
            ? 0
            : Math.min(3650, 30 + n(random.exponential(240)))
          : random.chance(0.55)
            ? 0
            : random.int(1, 365);
      }
      if (forced) probationAfter = filing + lag;
      const seen = observer.observe('court_cases', drawn, filing, random, IDENTITY_FIELDS.court_cases);
      const defendantId = scrambled(seedHash, SALT.defendantId, index, seen.alias ? k + 1 : 0);
      yield {
        slug: 'court_cases',
        truth: index,
        record: {
          case_id: `CR-${civilDate(filing).year}-${base36(scrambled(seedHash, SALT.caseId, index, k))}`,
          defendant_id: `D${base36(defendantId)}`,
          first_name: seen.first,
          middle_name: seen.middle,
          last_name: seen.last,
          dob: seen.dob,
          sex: seen.sex,
          ssn: seen.ssn,
          filing_date: formatDay(filing),
          disposition,
          disposition_date: disposition === null ? null : formatDay(filing + lag),
          sentence_days: sentence,
        },
      };
    }
  }

  // Probation: one term after the guilty plea; high-risk clients violate more and end early.
  if (probationAfter !== null) {
    const start = Math.min(asOf, probationAfter + random.int(0, 30));
    const risk = propensity + (random.next() - 0.5) * 0.3;
    const level = risk < 0.35 ? 'LOW' : risk < 0.75 ? 'MODERATE' : 'HIGH';
    const term = level === 'LOW' ? 365 : level === 'MODERATE' ? 730 : 1095;
    let end = start + term + random.int(-30, 30);
    const served = Math.min(end, asOf) - start;
    const perYear = level === 'LOW' ? 0.3 : level === 'MODERATE' ? 0.8 : 1.6;
    const violations = Math.min(9, random.poisson((perYear * served) / 365));
    if (violations >= 3) end = start + Math.floor(((end - start) * random.int(40, 90)) / 100);
    const seen = observer.observe(
      'probation_supervision',
      drawn,
      start,
      random,
      IDENTITY_FIELDS.probation_supervision,
    );
    const clientId = scrambled(seedHash, SALT.clientId, index, seen.alias ? 1 : 0);
    yield {
      slug: 'probation_supervision',
      truth: index,
      record: {
        supervision_id: `PS-${base36(scrambled(seedHash, SALT.supervisionId, index, 0))}`,
        client_id: `PC${decimal(clientId)}`,
        first_name: seen.first,
        middle_name: seen.middle,
        last_name: seen.last,
        dob: seen.dob,
        start_date: formatDay(start),
        end_date: end <= asOf ? formatDay(end) : null,
        risk_level: level,
        violations,
      },
    };
  }

  if (enrollment) {
    const seen = observer.observe(
      'reentry_participation',
      drawn,
      enrollment.day,
      random,
      IDENTITY_FIELDS.reentry_participation,
    );
    const participantId = scrambled(seedHash, SALT.participantId, index, seen.alias ? 1 : 0);
    yield {
      slug: 'reentry_participation',
      truth: index,
      record: {
        enrollment_id: `SC-${base36(scrambled(seedHash, SALT.enrollmentId, index, 0))}`,
        participant_id: `SC${decimal(participantId)}`,
        first_name: seen.first,
        last_name: seen.last,
        dob: seen.dob,
        zip: seen.zip,
        program: enrollment.program,
        enrolled_on: formatDay(enrollment.day),
        completed: enrollment.completed,
        services_received: enrollment.services,
        // Issue 13: the day the participant completed the program; empty if they did not.
        completed_on: enrollment.completed ? formatDay(enrollment.end) : null,
      },
    };
  }
}

const EVENT_FIELD: Record<CountyDatasetSlug, string> = {
  jail_bookings: 'booking_date',
  court_cases: 'filing_date',
  probation_supervision: 'start_date',
  reentry_participation: 'enrolled_on',
};

/**
 * Generates the county in memory: its people and the four datasets, each sorted by its event date
 * (then key), as an agency's extract would be. About 1.84 records per person with the default rates.
 */
export function generateCounty(options: CountyOptions): County {
  const resolved = resolve(options);
  const observer = new Observer(resolved.noise);
  const people: SyntheticPerson[] = [];
  const collected = new Map<CountyDatasetSlug, { records: CountyRecord[]; truth: number[] }>(
    COUNTY_DATASETS.map((d) => [d.slug, { records: [], truth: [] }]),
  );
  for (let index = 0; index < resolved.people; index++) {
    for (const row of personRows(resolved, observer, index, people)) {
      const target = collected.get(row.slug)!;
      target.records.push(row.record);
      target.truth.push(row.truth);
    }
  }
  const tallies = emptyTallies();
  observer.flush(tallies);
  const datasets = COUNTY_DATASETS.map((definition): CountyDatasetRecords => {
    const { records, truth } = collected.get(definition.slug)!;
    const event = EVENT_FIELD[definition.slug];
    const key = definition.keyField;
    const order = records.map((_, i) => i);
    const text = (i: number, field: string) => records[i][field] as string;
    order.sort((a, b) => {
      const ea = text(a, event);
      const eb = text(b, event);
      if (ea !== eb) return ea < eb ? -1 : 1;
      const ka = text(a, key);
      const kb = text(b, key);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    return {
      slug: definition.slug,
      definition: countyDataset(definition.slug),
      records: order.map((i) => records[i]),
      truth: order.map((i) => truth[i]),
    };
  });
  return { people, datasets, noise: tallies };
}

/** About how many people {@link generateCounty} needs for `records` records with the default rates. */
export function peopleForRecords(records: number): number {
  return Math.ceil(records / RECORDS_PER_PERSON);
}

/** Records per person with the default rates, measured on large counties. */
export const RECORDS_PER_PERSON = 1.84;
