/**
 * How often each agency's records get each identifier wrong. The rates are per record among the
 * records where the noise can apply (a nickname needs a name that has one; a day/month swap needs
 * a day of 12 or less); the generator's `noise` option scales them all.
 */
import type { CountyDatasetSlug } from './county-datasets';
import type { NameStyle } from './identifier-noise';

/** The kinds of identifier noise, counted per dataset in a {@link NoiseTally}. */
export const NOISE_KINDS = [
  'NICKNAME',
  'FIRST_NAME_TYPO',
  'LAST_NAME_TYPO',
  'MARRIED_NAME',
  'MIDDLE_NAME_MISSING',
  'MIDDLE_INITIAL',
  'DOB_MISSING',
  'DOB_SWAP',
  'DOB_TYPO',
  'SSN_MISSING',
  'SSN_TYPO',
  'SEX_MISSING',
  'ZIP_MOVED',
  'ALIAS_SUBJECT_ID',
] as const;
export type NoiseKind = (typeof NOISE_KINDS)[number];

/** One agency's record-keeping: noise rates by kind, and how it writes names, sex and SSNs. */
export interface NoiseProfile {
  rates: Readonly<Partial<Record<NoiseKind, number>>>;
  /** Name styles and their weights (formatting, not noise: the `noise` option leaves it alone). */
  styles: readonly (readonly [NameStyle, number])[];
  /** 'LETTER': M/F; 'WORD': Male/Female. */
  sex: 'LETTER' | 'WORD';
  /** The share of SSNs written with dashes ('123-45-6789' rather than '123456789'). */
  ssnDashes: number;
  /** The share of middle initials written with a period ("J." rather than "J"). */
  initialPeriod: number;
}

/**
 * The county's four record-keeping habits: the jail books fast from what people say and what they
 * carry (typos, nicknames, upper case without accents, aliases); the court copies charging documents
 * (fewer typos, more missing SSNs); probation works from court paperwork; the CBO takes
 * self-reported names on a web form (nicknames, lower case, no SSN).
 */
export const NOISE_PROFILES: Readonly<Record<CountyDatasetSlug, NoiseProfile>> = {
  jail_bookings: {
    rates: {
      NICKNAME: 0.08,
      FIRST_NAME_TYPO: 0.03,
      LAST_NAME_TYPO: 0.03,
      MARRIED_NAME: 0.85,
      MIDDLE_NAME_MISSING: 0.25,
      MIDDLE_INITIAL: 0.15,
      DOB_SWAP: 0.03,
      DOB_TYPO: 0.015,
      SSN_MISSING: 0.2,
      SSN_TYPO: 0.02,
      SEX_MISSING: 0.005,
      ZIP_MOVED: 0.1,
      ALIAS_SUBJECT_ID: 0.04,
    },
    styles: [
      ['UPPER_ASCII', 0.75],
      ['UPPER', 0.1],
      ['UPPER_SPACED', 0.15],
    ],
    sex: 'LETTER',
    ssnDashes: 0.4,
    initialPeriod: 0,
  },
  court_cases: {
    rates: {
      NICKNAME: 0.02,
      FIRST_NAME_TYPO: 0.015,
      LAST_NAME_TYPO: 0.015,
      MARRIED_NAME: 0.9,
      MIDDLE_NAME_MISSING: 0.15,
      MIDDLE_INITIAL: 0.3,
      DOB_SWAP: 0.01,
      DOB_TYPO: 0.01,
      SSN_MISSING: 0.35,
      SSN_TYPO: 0.01,
      SEX_MISSING: 0.01,
      ALIAS_SUBJECT_ID: 0.02,
    },
    styles: [
      ['AS_IS', 0.8],
      ['ASCII', 0.15],
      ['UPPER', 0.05],
    ],
    sex: 'WORD',
    ssnDashes: 1,
    initialPeriod: 0.6,
  },
  probation_supervision: {
    rates: {
      NICKNAME: 0.03,
      FIRST_NAME_TYPO: 0.02,
      LAST_NAME_TYPO: 0.02,
      MARRIED_NAME: 0.9,
      MIDDLE_NAME_MISSING: 0.3,
      MIDDLE_INITIAL: 0.2,
      DOB_SWAP: 0.015,
      DOB_TYPO: 0.01,
      ALIAS_SUBJECT_ID: 0.01,
    },
    styles: [
      ['ASCII', 0.6],
      ['AS_IS', 0.3],
      ['UPPER_ASCII', 0.1],
    ],
    sex: 'LETTER',
    ssnDashes: 1,
    initialPeriod: 0.3,
  },
  reentry_participation: {
    rates: {
      NICKNAME: 0.25,
      FIRST_NAME_TYPO: 0.04,
      LAST_NAME_TYPO: 0.04,
      MARRIED_NAME: 0.95,
      DOB_MISSING: 0.03,
      DOB_SWAP: 0.04,
      DOB_TYPO: 0.02,
      ZIP_MOVED: 0.15,
      ALIAS_SUBJECT_ID: 0.05,
    },
    styles: [
      ['AS_IS', 0.6],
      ['LOWER', 0.2],
      ['ASCII', 0.2],
    ],
    sex: 'LETTER',
    ssnDashes: 1,
    initialPeriod: 0,
  },
};

/** Per dataset, how many records each noise could apply to (`eligible`) and did (`applied`). */
export interface NoiseTally {
  records: number;
  eligible: Record<NoiseKind, number>;
  applied: Record<NoiseKind, number>;
}

/** An empty tally. */
export function emptyTally(): NoiseTally {
  const zero = () => Object.fromEntries(NOISE_KINDS.map((k) => [k, 0])) as Record<NoiseKind, number>;
  return { records: 0, eligible: zero(), applied: zero() };
}
