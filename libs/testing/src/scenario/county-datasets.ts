/**
 * The four provider datasets of the demo county, as `registerDataset` inputs. Their slugs are part
 * of the demo (agreements, docs and acceptance tests name them); their field lists say which fields
 * take part in linkage (`identity`) and how sensitive each is.
 */
import type { IdentityRoleName } from '@broker/linkage';

/** Field types, as the control plane's `FieldType` enum spells them. */
export type ScenarioFieldType = 'STRING' | 'INTEGER' | 'FLOAT' | 'BOOLEAN' | 'DATE' | 'DATETIME';
/** Classifications, as the control plane's `Classification` enum spells them. */
export type ScenarioClassification = 'DIRECT_IDENTIFIER' | 'QUASI_IDENTIFIER' | 'SENSITIVE' | 'NON_SENSITIVE';
/** Identity roles, as the control plane's `IdentityRole` enum spells them (the linkage library's list). */
export type ScenarioIdentityRole = IdentityRoleName;

/** A `FieldInput` of `registerDataset`. */
export interface ScenarioField {
  name: string;
  type: ScenarioFieldType;
  classification: ScenarioClassification;
  identity?: ScenarioIdentityRole;
  required?: boolean;
  description?: string;
}

/** A `RegisterDatasetInput` of `registerDataset`. */
export interface ScenarioDataset<Slug extends string = string> {
  slug: Slug;
  title: string;
  description: string;
  keyField: string;
  subjectField: string;
  fields: ScenarioField[];
}

/** The slugs of the county's datasets. */
export type CountyDatasetSlug =
  'jail_bookings' | 'court_cases' | 'probation_supervision' | 'reentry_participation';

/** The county's agencies, by the role they play in the scenario. */
export type CountyAgencyRole = 'SHERIFF' | 'COURT' | 'PROBATION' | 'CBO' | 'RESEARCH' | 'OVERSIGHT';

const id = (name: string, description: string): ScenarioField => ({
  name,
  type: 'STRING',
  classification: 'NON_SENSITIVE',
  required: true,
  description,
});
const subject = (name: string, description: string): ScenarioField => ({
  name,
  type: 'STRING',
  classification: 'DIRECT_IDENTIFIER',
  required: true,
  description,
});
const FIRST_NAME: ScenarioField = {
  name: 'first_name',
  type: 'STRING',
  classification: 'DIRECT_IDENTIFIER',
  identity: 'FIRST_NAME',
  required: true,
};
const MIDDLE_NAME: ScenarioField = {
  name: 'middle_name',
  type: 'STRING',
  classification: 'DIRECT_IDENTIFIER',
  identity: 'MIDDLE_NAME',
};
const LAST_NAME: ScenarioField = {
  name: 'last_name',
  type: 'STRING',
  classification: 'DIRECT_IDENTIFIER',
  identity: 'LAST_NAME',
  required: true,
};
const dob = (required: boolean): ScenarioField => ({
  name: 'dob',
  type: 'DATE',
  classification: 'QUASI_IDENTIFIER',
  identity: 'DATE_OF_BIRTH',
  required,
  description: 'Date of birth as recorded',
});
const SEX: ScenarioField = {
  name: 'sex',
  type: 'STRING',
  classification: 'QUASI_IDENTIFIER',
  identity: 'SEX',
  description: 'As recorded by the agency (M/F or Male/Female)',
};
const SSN: ScenarioField = {
  name: 'ssn',
  type: 'STRING',
  classification: 'DIRECT_IDENTIFIER',
  identity: 'SSN',
  description: 'Social Security number, with or without dashes; often missing',
};
const ZIP: ScenarioField = {
  name: 'zip',
  type: 'STRING',
  classification: 'QUASI_IDENTIFIER',
  identity: 'ZIP',
  description: 'ZIP code of residence',
};

export const JAIL_BOOKINGS: ScenarioDataset<'jail_bookings'> = {
  slug: 'jail_bookings',
  title: 'Jail bookings',
  description: "Every booking into the county jail, from the Sheriff's Office jail management system.",
  keyField: 'booking_id',
  subjectField: 'person_id',
  fields: [
    id('booking_id', 'Booking number'),
    subject('person_id', "The Sheriff's person number (a person booked twice may have received two)"),
    FIRST_NAME,
    MIDDLE_NAME,
    LAST_NAME,
    dob(true),
    SEX,
    SSN,
    ZIP,
    { name: 'booking_date', type: 'DATE', classification: 'QUASI_IDENTIFIER', required: true },
    {
      name: 'charge_category',
      type: 'STRING',
      classification: 'SENSITIVE',
      description: 'Most serious charge: PROPERTY, DRUG, VIOLENT, PUBLIC_ORDER, DUI, WEAPONS or OTHER',
    },
    {
      name: 'charge_severity',
      type: 'STRING',
      classification: 'SENSITIVE',
      description: 'FELONY or MISDEMEANOR',
    },
    {
      name: 'age_at_booking',
      type: 'INTEGER',
      classification: 'QUASI_IDENTIFIER',
      description: 'Computed from the recorded date of birth',
    },
    { name: 'released', type: 'BOOLEAN', classification: 'NON_SENSITIVE' },
    // Issue 13: what a recidivism evaluation needs.
    {
      name: 'release_date',
      type: 'DATE',
      classification: 'QUASI_IDENTIFIER',
      description: 'The day of release; empty while in custody',
    },
  ],
};

export const COURT_CASES: ScenarioDataset<'court_cases'> = {
  slug: 'court_cases',
  title: 'Criminal court cases',
  description: 'Criminal cases filed in Superior Court, with their disposition and sentence.',
  keyField: 'case_id',
  subjectField: 'defendant_id',
  fields: [
    id('case_id', 'Case number'),
    subject('defendant_id', "The court's defendant number"),
    FIRST_NAME,
    MIDDLE_NAME,
    LAST_NAME,
    dob(true),
    SEX,
    SSN,
    { name: 'filing_date', type: 'DATE', classification: 'QUASI_IDENTIFIER', required: true },
    {
      name: 'disposition',
      type: 'STRING',
      classification: 'SENSITIVE',
      description: 'GUILTY_PLEA, CONVICTED, DISMISSED, ACQUITTED or DIVERTED; empty while pending',
    },
    { name: 'disposition_date', type: 'DATE', classification: 'QUASI_IDENTIFIER' },
    {
      name: 'sentence_days',
      type: 'INTEGER',
      classification: 'SENSITIVE',
      description: 'Days of custody imposed; 0 for a probation-only sentence',
    },
  ],
};

export const PROBATION_SUPERVISION: ScenarioDataset<'probation_supervision'> = {
  slug: 'probation_supervision',
  title: 'Probation supervision terms',
  description: 'Terms of adult probation supervision, with risk level and violations.',
  keyField: 'supervision_id',
  subjectField: 'client_id',
  fields: [
    id('supervision_id', 'Supervision term number'),
    subject('client_id', "The probation department's client number"),
    FIRST_NAME,
    MIDDLE_NAME,
    LAST_NAME,
    dob(true),
    { name: 'start_date', type: 'DATE', classification: 'QUASI_IDENTIFIER', required: true },
    { name: 'end_date', type: 'DATE', classification: 'QUASI_IDENTIFIER', description: 'Empty while active' },
    { name: 'risk_level', type: 'STRING', classification: 'SENSITIVE', description: 'LOW, MODERATE or HIGH' },
    { name: 'violations', type: 'INTEGER', classification: 'SENSITIVE' },
  ],
};

export const REENTRY_PARTICIPATION: ScenarioDataset<'reentry_participation'> = {
  slug: 'reentry_participation',
  title: 'Re-entry program participation',
  description: "Enrollments in Second Chance's re-entry programs, self-reported identity.",
  keyField: 'enrollment_id',
  subjectField: 'participant_id',
  fields: [
    id('enrollment_id', 'Enrollment number'),
    subject('participant_id', "The program's participant number"),
    FIRST_NAME,
    LAST_NAME,
    dob(false),
    ZIP,
    { name: 'program', type: 'STRING', classification: 'SENSITIVE', required: true },
    { name: 'enrolled_on', type: 'DATE', classification: 'QUASI_IDENTIFIER', required: true },
    { name: 'completed', type: 'BOOLEAN', classification: 'NON_SENSITIVE' },
    { name: 'services_received', type: 'INTEGER', classification: 'NON_SENSITIVE' },
    // Issue 13: what a recidivism evaluation needs.
    {
      name: 'completed_on',
      type: 'DATE',
      classification: 'QUASI_IDENTIFIER',
      description: 'The day the participant completed the program; empty if they did not',
    },
  ],
};

/** The county's datasets, in the order the demo registers them. */
export const COUNTY_DATASETS = [
  JAIL_BOOKINGS,
  COURT_CASES,
  PROBATION_SUPERVISION,
  REENTRY_PARTICIPATION,
] as const;

/** Which agency provides each dataset. */
export const COUNTY_DATASET_PROVIDERS: Readonly<Record<CountyDatasetSlug, CountyAgencyRole>> = {
  jail_bookings: 'SHERIFF',
  court_cases: 'COURT',
  probation_supervision: 'PROBATION',
  reentry_participation: 'CBO',
};

/** The dataset definition of a slug. */
export function countyDataset(slug: CountyDatasetSlug): ScenarioDataset<CountyDatasetSlug> {
  const dataset = COUNTY_DATASETS.find((d) => d.slug === slug);
  if (!dataset) throw new Error(`no county dataset ${String(slug)}`);
  return dataset;
}
