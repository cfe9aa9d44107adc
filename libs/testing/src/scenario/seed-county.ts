/**
 * Seeds a broker with the demo county through its public API only: agencies, purposes, users,
 * the four provider datasets and their records. The same code drives a running broker over HTTP
 * (`npm run demo`, with {@link httpBrokerClient}) and an in-process one in tests (a `TestBroker`).
 *
 * Seeding is a sequence of steps, each returning what later steps need (agency ids, steward keys,
 * dataset ids), so an agreement step such as "CBO → research office for RECIDIVISM_EVALUATION" slots
 * in after {@link registerCountyDatasets} with everything it needs in {@link SeededCounty}.
 */
import {
  COUNTY_DATASETS,
  COUNTY_DATASET_PROVIDERS,
  type CountyAgencyRole,
  type CountyDatasetSlug,
  type ScenarioDataset,
} from './county-datasets';
import { type County, generateCounty } from './county-generator';
import { toCsv } from './csv-writer';

/** What seeding needs of a broker: GraphQL that throws on any error, and the REST upload. */
export interface BrokerClient {
  /** Runs a control-plane GraphQL operation and returns `data`; throws when the answer has errors. */
  gql<T = Record<string, any>>(
    apiKey: string,
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<T>;
  /** `POST /api/datasets/{id}/records`; returns the status and the parsed JSON body. */
  upload(
    apiKey: string,
    datasetId: string,
    contentType: string,
    body: string,
  ): Promise<{ status: number; body: Record<string, any> }>;
}

/** Raised when the broker answers a GraphQL request with errors. */
export class BrokerRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errors: unknown[],
  ) {
    super(message);
    this.name = 'BrokerRequestError';
  }
}

/** A {@link BrokerClient} over HTTP with fetch, for a broker at `baseUrl` (e.g. http://127.0.0.1:3000). */
export function httpBrokerClient(baseUrl: string): BrokerClient {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    async gql<T>(apiKey: string, query: string, variables?: Record<string, unknown>): Promise<T> {
      const response = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      const text = await response.text();
      let body: { data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new BrokerRequestError(
          `HTTP ${response.status} from /graphql: ${text.slice(0, 300)}`,
          response.status,
          [],
        );
      }
      if (body.errors?.length || !body.data) {
        const first = body.errors?.[0];
        const code = first?.extensions?.code ? ` (${first.extensions.code})` : '';
        throw new BrokerRequestError(
          `GraphQL request failed${code}: ${first?.message ?? `HTTP ${response.status}`}`,
          response.status,
          body.errors ?? [],
        );
      }
      return body.data;
    },
    async upload(apiKey: string, datasetId: string, contentType: string, body: string) {
      const response = await fetch(`${base}/api/datasets/${encodeURIComponent(datasetId)}/records`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': contentType },
        body,
      });
      const text = await response.text();
      let parsed: Record<string, any>;
      try {
        parsed = JSON.parse(text) as Record<string, any>;
      } catch {
        parsed = { error: text.slice(0, 300) };
      }
      return { status: response.status, body: parsed };
    },
  };
}

/** The county's agencies. */
export const COUNTY_AGENCIES: Readonly<Record<CountyAgencyRole, { name: string; kind: string }>> = {
  SHERIFF: { name: "County Sheriff's Office", kind: 'LAW_ENFORCEMENT' },
  COURT: { name: 'Superior Court', kind: 'COURT' },
  PROBATION: { name: 'County Probation Department', kind: 'PROBATION' },
  CBO: { name: 'Second Chance Re-entry Services', kind: 'CBO' },
  RESEARCH: { name: 'County Research Office', kind: 'RESEARCH' },
  OVERSIGHT: { name: 'Justice System Oversight Board', kind: 'oversight' },
};

/** The purposes agreements in the county are made for. */
export const COUNTY_PURPOSES = [
  {
    code: 'RECIDIVISM_EVALUATION',
    description:
      'Evaluating whether re-entry programs and court outcomes reduce re-arrest and re-conviction, ' +
      'for published aggregate findings; no decisions about individuals.',
  },
  {
    code: 'SUPERVISION',
    description: 'Supervising individuals on probation: case management, risk assessment and compliance.',
  },
  {
    code: 'PROGRAM_ADMINISTRATION',
    description:
      'Running a program: eligibility, referrals, enrollment and service delivery for its participants.',
  },
] as const;

/** Control-plane roles. */
export type CountyUserRole = 'OPERATOR' | 'STEWARD' | 'ANALYST' | 'AUDITOR';

/** A user the seeding creates. */
export interface CountyUserSpec {
  /** A stable handle for the user, e.g. `steward:CBO`. */
  handle: string;
  role: Exclude<CountyUserRole, 'OPERATOR'>;
  agency: CountyAgencyRole;
  email: string;
  displayName: string;
}

/**
 * One steward per agency that provides or receives data (the research office's steward approves
 * agreements on the recipient's side), analysts at the research office and probation, and an
 * auditor at the oversight board.
 */
export const COUNTY_USERS: readonly CountyUserSpec[] = [
  {
    handle: 'steward:SHERIFF',
    role: 'STEWARD',
    agency: 'SHERIFF',
    email: 'records.steward@sheriff.county.example',
    displayName: 'Dana Whitfield',
  },
  {
    handle: 'steward:COURT',
    role: 'STEWARD',
    agency: 'COURT',
    email: 'data.steward@court.county.example',
    displayName: 'Marcus Oyelaran',
  },
  {
    handle: 'steward:PROBATION',
    role: 'STEWARD',
    agency: 'PROBATION',
    email: 'data.steward@probation.county.example',
    displayName: 'Priya Raman',
  },
  {
    handle: 'steward:CBO',
    role: 'STEWARD',
    agency: 'CBO',
    email: 'privacy@secondchance.example',
    displayName: 'Rosa Villanueva',
  },
  {
    handle: 'steward:RESEARCH',
    role: 'STEWARD',
    agency: 'RESEARCH',
    email: 'steward@research.county.example',
    displayName: 'Ellen Park',
  },
  {
    handle: 'analyst:RESEARCH',
    role: 'ANALYST',
    agency: 'RESEARCH',
    email: 'analyst@research.county.example',
    displayName: 'Tomás Herrera',
  },
  {
    handle: 'analyst:PROBATION',
    role: 'ANALYST',
    agency: 'PROBATION',
    email: 'analyst@probation.county.example',
    displayName: 'Jordan Mills',
  },
  {
    handle: 'auditor:OVERSIGHT',
    role: 'AUDITOR',
    agency: 'OVERSIGHT',
    email: 'auditor@oversight.county.example',
    displayName: 'Grace Adeyemi',
  },
];

/** A user as created, with its API key (shown once by the broker). */
export interface SeededUser extends CountyUserSpec {
  id: string;
  apiKey: string;
  agencyId: string;
  agencyName: string;
}

/** A registered dataset and what its upload did. */
export interface SeededDataset {
  id: string;
  slug: CountyDatasetSlug;
  provider: CountyAgencyRole;
  definition: ScenarioDataset<CountyDatasetSlug>;
  /** Records generated for the dataset. */
  records: number;
  inserted: number;
  updated: number;
}

/** Everything seeding created: what the demo prints, and what later steps (agreements) build on. */
export interface SeededCounty {
  operatorKey: string;
  agencies: Record<CountyAgencyRole, { id: string; name: string; kind: string }>;
  purposes: string[];
  users: SeededUser[];
  datasets: Record<CountyDatasetSlug, SeededDataset>;
  /** The generated county, with the truth behind the records. */
  county: County;
  /** The agreements in force. */
  agreements: SeededAgreement[];
}

/** What {@link seedCounty} takes. */
export interface SeedCountyOptions {
  /** The operator's API key (the broker's BROKER_BOOTSTRAP_TOKEN). */
  operatorKey: string;
  /** Seed of the synthetic county; default 2025. */
  seed?: number | string;
  /** People in the county; default 2000 (about 3,600 records). */
  people?: number;
  /** A county generated already (then `seed` and `people` are ignored). */
  county?: County;
  /** Records per upload request; default 50,000. */
  batchSize?: number;
  /** Progress messages. */
  log?: (message: string) => void;
}

/** Creates the county's agencies as the operator. */
export async function createCountyAgencies(
  client: BrokerClient,
  operatorKey: string,
): Promise<SeededCounty['agencies']> {
  const agencies = {} as SeededCounty['agencies'];
  for (const [role, agency] of Object.entries(COUNTY_AGENCIES) as [
    CountyAgencyRole,
    { name: string; kind: string },
  ][]) {
    const data = await client.gql<{ createAgency: { id: string; name: string } }>(
      operatorKey,
      `mutation($input: CreateAgencyInput!) { createAgency(input: $input) { id name } }`,
      { input: agency },
    );
    agencies[role] = { id: data.createAgency.id, name: data.createAgency.name, kind: agency.kind };
  }
  return agencies;
}

/** Defines the county's purposes as the operator. */
export async function defineCountyPurposes(client: BrokerClient, operatorKey: string): Promise<string[]> {
  const codes: string[] = [];
  for (const purpose of COUNTY_PURPOSES) {
    const data = await client.gql<{ definePurpose: { code: string } }>(
      operatorKey,
      `mutation($input: DefinePurposeInput!) { definePurpose(input: $input) { code } }`,
      { input: { code: purpose.code, description: purpose.description } },
    );
    codes.push(data.definePurpose.code);
  }
  return codes;
}

/**
 * Creates the county's users as DESIGN's "Users" rules allow and collects their API keys: the
 * operator invites each agency's steward and the auditor, and each invitation is rotated as its
 * owner would; each agency's steward then creates its analysts.
 */
export async function createCountyUsers(
  client: BrokerClient,
  operatorKey: string,
  agencies: SeededCounty['agencies'],
): Promise<SeededUser[]> {
  const users: SeededUser[] = [];
  const stewardKeys = new Map<CountyAgencyRole, string>();
  // Stewards first: an agency's analysts are created by its steward.
  const ordered = [...COUNTY_USERS].sort(
    (a, b) => Number(b.role === 'STEWARD') - Number(a.role === 'STEWARD'),
  );
  for (const spec of ordered) {
    const agency = agencies[spec.agency];
    const steward = stewardKeys.get(spec.agency);
    const creator = spec.role === 'ANALYST' || (spec.role === 'STEWARD' && steward) ? steward : operatorKey;
    if (!creator) throw new Error(`${spec.handle}: its agency has no steward to create it`);
    const data = await client.gql<{ createUser: { user: { id: string }; apiKey: string } }>(
      creator,
      `mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } apiKey } }`,
      { input: { agencyId: agency.id, email: spec.email, displayName: spec.displayName, role: spec.role } },
    );
    let apiKey = data.createUser.apiKey;
    if (creator === operatorKey) {
      // An invitation: it works once its owner has rotated it.
      const rotated = await client.gql<{ rotateApiKey: { apiKey: string } }>(
        apiKey,
        `mutation { rotateApiKey { apiKey } }`,
      );
      apiKey = rotated.rotateApiKey.apiKey;
    }
    if (spec.role === 'STEWARD' && !steward) stewardKeys.set(spec.agency, apiKey);
    users.push({
      ...spec,
      id: data.createUser.user.id,
      apiKey,
      agencyId: agency.id,
      agencyName: agency.name,
    });
  }
  // In the order of COUNTY_USERS, as before.
  return COUNTY_USERS.map((spec) => users.find((u) => u.handle === spec.handle)!);
}

/** The API key of the user with `handle` (e.g. `steward:CBO`). */
export function countyKey(users: readonly SeededUser[], handle: string): string {
  const user = users.find((u) => u.handle === handle);
  if (!user) throw new Error(`no seeded user ${handle}`);
  return user.apiKey;
}

/** Registers the four datasets, each as the steward of its provider. */
export async function registerCountyDatasets(
  client: BrokerClient,
  users: readonly SeededUser[],
): Promise<Record<CountyDatasetSlug, { id: string; provider: CountyAgencyRole }>> {
  const registered = {} as Record<CountyDatasetSlug, { id: string; provider: CountyAgencyRole }>;
  for (const definition of COUNTY_DATASETS) {
    const provider = COUNTY_DATASET_PROVIDERS[definition.slug];
    const data = await client.gql<{ registerDataset: { id: string } }>(
      countyKey(users, `steward:${provider}`),
      `mutation($input: RegisterDatasetInput!) { registerDataset(input: $input) { id } }`,
      { input: definition },
    );
    registered[definition.slug] = { id: data.registerDataset.id, provider };
  }
  return registered;
}

/**
 * Uploads a dataset's records as CSV through the REST ingest route, in batches; throws with the
 * broker's row errors when it rejects one.
 */
export async function uploadCountyRecords(
  client: BrokerClient,
  stewardKey: string,
  datasetId: string,
  definition: ScenarioDataset,
  records: readonly Record<string, unknown>[],
  batchSize = 50_000,
): Promise<{ inserted: number; updated: number }> {
  let inserted = 0;
  let updated = 0;
  for (let start = 0; start < records.length; start += batchSize) {
    const batch = records.slice(start, start + batchSize);
    const { status, body } = await client.upload(
      stewardKey,
      datasetId,
      'text/csv',
      toCsv(definition.fields, batch),
    );
    if (status !== 200) {
      const errors = Array.isArray(body.errors)
        ? JSON.stringify(body.errors.slice(0, 5))
        : JSON.stringify(body);
      throw new Error(
        `Uploading ${definition.slug} rows ${start}-${start + batch.length - 1} failed with HTTP ${status}: ${errors}`,
      );
    }
    inserted += Number(body.inserted ?? 0);
    updated += Number(body.updated ?? 0);
  }
  return { inserted, updated };
}

/**
 * Seeds a fresh broker with the demo county: agencies, purposes, users, datasets and records.
 * Agency names and e-mails are fixed, so it runs once per broker database.
 */
export async function seedCounty(client: BrokerClient, options: SeedCountyOptions): Promise<SeededCounty> {
  const log = options.log ?? (() => undefined);
  const { operatorKey } = options;
  const county =
    options.county ?? generateCounty({ seed: options.seed ?? 2025, people: options.people ?? 2000 });

  const agencies = await createCountyAgencies(client, operatorKey);
  log(`created ${Object.keys(agencies).length} agencies`);
  const purposes = await defineCountyPurposes(client, operatorKey);
  log(`defined purposes ${purposes.join(', ')}`);
  const users = await createCountyUsers(client, operatorKey, agencies);
  log(`created ${users.length} users`);
  const registered = await registerCountyDatasets(client, users);
  log(`registered datasets ${Object.keys(registered).join(', ')}`);

  // The four uploads go to four tables as four stewards: they run side by side.
  const uploaded = await Promise.all(
    county.datasets.map(async ({ slug, definition, records }): Promise<SeededDataset> => {
      const { id, provider } = registered[slug];
      const started = Date.now();
      const report = await uploadCountyRecords(
        client,
        countyKey(users, `steward:${provider}`),
        id,
        definition,
        records,
        options.batchSize,
      );
      log(`uploaded ${records.length} records to ${slug} in ${Date.now() - started} ms`);
      return { id, slug, provider, definition, records: records.length, ...report };
    }),
  );
  const datasets = Object.fromEntries(uploaded.map((d) => [d.slug, d])) as Record<
    CountyDatasetSlug,
    SeededDataset
  >;

  const agreements = await createCountyAgreements(client, agencies, users, datasets);
  log(`agreements in force: ${agreements.map((a) => a.title).join('; ')}`);
  return { operatorKey, agencies, purposes, users, datasets, county, agreements };
}

/** A grant of the demo's agreements: dataset, then `field` (RAW) or `field:TRANSFORM`. */
interface CountyAgreementSpec {
  title: string;
  provider: CountyAgencyRole;
  recipient: CountyAgencyRole;
  purposes: string[];
  dataset: CountyDatasetSlug;
  fields: string[];
  rowFilter?: Record<string, unknown>;
  access?: 'ROWS' | 'AGGREGATE_ONLY';
  /** Release the linkage pseudonym `personKey`. */
  linkage?: boolean;
  legalBasis: string;
  /** Who in the community gains, and how: required where oversight is. */
  communityBenefit?: string;
  /** Why the purpose needs a field at its precision, by field name: required for overseen fields. */
  justifications?: Record<string, string>;
  /** Days within which the recipient destroys what it received. */
  retentionDays?: number;
  /** Issue 13: the grant's minimum cell size, where not the default. */
  minCellSize?: number;
}

/**
 * Issue 13: the dates the recidivism question needs (program completion, booking and release),
 * released to the research office for counts only (AGGREGATE_ONLY), with linkage so that a linked
 * count can join them. Their titles name them for the demo, which passes their ids as `agreement`.
 */
export const RECIDIVISM_COUNT_AGREEMENTS: readonly CountyAgreementSpec[] = [
  {
    title: 'Program completions, counts only',
    provider: 'CBO',
    recipient: 'RESEARCH',
    purposes: ['RECIDIVISM_EVALUATION'],
    dataset: 'reentry_participation',
    access: 'AGGREGATE_ONLY',
    fields: ['program', 'enrolled_on', 'completed_on'],
    linkage: true,
    minCellSize: 5,
    legalBasis: 'Participant consent form v3, section 4 (research use of de-identified records)',
    communityBenefit:
      'Counts of who completed each program and was booked again, so the county funds the programs that work; no row leaves.',
    justifications: {
      program: 'Outcomes are compared program by program; the program name is the unit of the evaluation.',
      enrolled_on: 'The cohort is the people who enrolled in the period evaluated.',
      completed_on: 'A re-booking counts within 365 days of completing, so the completion date is needed.',
    },
  },
  {
    title: 'Bookings and releases, counts only',
    provider: 'SHERIFF',
    recipient: 'RESEARCH',
    purposes: ['RECIDIVISM_EVALUATION'],
    dataset: 'jail_bookings',
    access: 'AGGREGATE_ONLY',
    fields: ['booking_date', 'release_date', 'charge_category'],
    linkage: true,
    minCellSize: 5,
    legalBasis: 'County research data-sharing ordinance',
    communityBenefit:
      'Counts of bookings after a program, so the county learns which programs reduce returns to jail; no row leaves.',
    justifications: {
      booking_date: 'A booking counts when it falls within 365 days after a program was completed.',
      release_date: 'Time at risk starts at release.',
      charge_category: 'Outcomes are reported by the kind of charge.',
    },
  },
];

/**
 * The county's agreements. The CBO shares program participation with the research office for
 * recidivism evaluation, reduced to what the evaluation needs; the sheriff and the court share with
 * the research office likewise, all with the linkage pseudonym so that the office can follow one
 * person across the three; probation shares counts only (AGGREGATE_ONLY) of its supervision; the
 * sheriff shares identified bookings with probation for supervision. There is no CBO → probation
 * agreement: probation sees no program participation.
 */
export const COUNTY_AGREEMENTS: readonly CountyAgreementSpec[] = [
  {
    title: 'Re-entry program outcomes for recidivism evaluation',
    provider: 'CBO',
    recipient: 'RESEARCH',
    purposes: ['RECIDIVISM_EVALUATION'],
    dataset: 'reentry_participation',
    fields: [
      'program',
      'enrolled_on:GENERALIZE',
      'completed',
      'services_received:GENERALIZE',
      'dob:GENERALIZE',
      'zip:GENERALIZE',
      'last_name:HASH',
    ],
    linkage: true,
    legalBasis: 'Participant consent form v3, section 4 (research use of de-identified records)',
    communityBenefit:
      'Shows which re-entry programs keep people from returning to jail, so the county funds the ones that work.',
    justifications: {
      program: 'Outcomes are compared program by program; the program name is the unit of the evaluation.',
    },
    retentionDays: 730,
  },
  {
    title: 'Jail bookings for recidivism evaluation',
    provider: 'SHERIFF',
    recipient: 'RESEARCH',
    purposes: ['RECIDIVISM_EVALUATION'],
    dataset: 'jail_bookings',
    fields: [
      'booking_date',
      'charge_category',
      'charge_severity',
      'released',
      'age_at_booking:GENERALIZE',
      'dob:GENERALIZE',
      'last_name:HASH',
    ],
    linkage: true,
    legalBasis: 'County research data-sharing ordinance',
    communityBenefit:
      'Measures re-arrest after release, so the county can tell whether its programs and sentences reduce it.',
    justifications: {
      charge_category:
        'Re-arrest is compared by kind of charge; without it the evaluation cannot adjust for it.',
      charge_severity: 'Felony and misdemeanour re-arrests are reported separately.',
    },
    retentionDays: 730,
  },
  {
    title: 'Court dispositions for recidivism evaluation',
    provider: 'COURT',
    recipient: 'RESEARCH',
    purposes: ['RECIDIVISM_EVALUATION'],
    dataset: 'court_cases',
    fields: ['filing_date', 'disposition', 'disposition_date', 'sentence_days:GENERALIZE'],
    linkage: true,
    legalBasis: 'Court administrative order on research access',
    communityBenefit:
      'Shows whether diversion and sentencing choices change re-conviction, for public reports.',
    justifications: {
      disposition: 'Re-conviction is the outcome measured: a disposition is the only record of it.',
      sentence_days: 'Time in custody shifts when re-offending can happen; bands of 5 days are enough.',
    },
    retentionDays: 730,
  },
  {
    title: 'Supervision counts for recidivism evaluation',
    provider: 'PROBATION',
    recipient: 'RESEARCH',
    purposes: ['RECIDIVISM_EVALUATION'],
    dataset: 'probation_supervision',
    access: 'AGGREGATE_ONLY',
    fields: ['risk_level', 'start_date:GENERALIZE', 'violations:GENERALIZE'],
    legalBasis: 'Probation department statistical release policy',
    communityBenefit:
      'Published counts of supervision by risk level show whether supervision is proportionate.',
    justifications: {
      risk_level: 'Counts are reported by risk level; counts only, never rows.',
      violations: 'Violations are counted in bands of 5 to compare supervision intensity.',
    },
  },
  {
    title: 'Felony bookings for probation supervision',
    provider: 'SHERIFF',
    recipient: 'PROBATION',
    purposes: ['SUPERVISION'],
    dataset: 'jail_bookings',
    fields: [
      'first_name',
      'last_name',
      'dob',
      'booking_date',
      'charge_category',
      'charge_severity',
      'released',
    ],
    rowFilter: { charge_severity: 'FELONY' },
    legalBasis: 'State probation statute, information sharing for supervision',
    communityBenefit:
      'Probation officers learn promptly when someone they supervise is booked for a felony, as the statute requires.',
    justifications: {
      first_name:
        'Officers identify the person they supervise by name; the statute allows it for supervision.',
      last_name:
        'Officers identify the person they supervise by name; the statute allows it for supervision.',
      charge_category: 'The kind of charge decides the supervision response.',
      charge_severity: 'Only felony bookings are shared; the severity confirms it.',
    },
    retentionDays: 365,
  },
  // -- Issue 13: the recidivism question, answered with counts only --
  ...RECIDIVISM_COUNT_AGREEMENTS,
];

/**
 * A proposal both parties approved that awaits the oversight board: it shows in the admin UI's
 * oversight queue and, never having been in force, not on the public register.
 */
export const COUNTY_PROPOSAL_AWAITING_OVERSIGHT: CountyAgreementSpec = {
  title: 'Court dispositions for probation supervision',
  provider: 'COURT',
  recipient: 'PROBATION',
  purposes: ['SUPERVISION'],
  dataset: 'court_cases',
  fields: ['filing_date', 'disposition', 'disposition_date', 'sentence_days'],
  linkage: true,
  legalBasis: 'State probation statute, information sharing for supervision',
  communityBenefit:
    'Officers see new convictions of people they supervise without waiting for a court letter.',
  justifications: {
    disposition: 'A new conviction changes the terms of supervision.',
    sentence_days: 'A custody sentence suspends supervision for its length.',
  },
  retentionDays: 365,
};

/** A dataset's retention the seeding sets with updateDataset: records older than this are destroyed daily. */
export const COUNTY_RETENTION = {
  dataset: 'probation_supervision' as CountyDatasetSlug,
  retentionDays: 3650,
  retentionField: 'end_date',
};

/** An agreement the seeding put in force. */
export interface SeededAgreement {
  id: string;
  title: string;
  provider: CountyAgencyRole;
  recipient: CountyAgencyRole;
  dataset: CountyDatasetSlug;
}

/** The agreement input of a county agreement spec. */
function countyAgreementInput(
  spec: CountyAgreementSpec,
  agencies: SeededCounty['agencies'],
  datasets: Record<CountyDatasetSlug, { id: string }>,
) {
  const validFrom = new Date(Date.UTC(new Date().getUTCFullYear() - 1, 0, 1)).toISOString();
  const validUntil = new Date(Date.UTC(new Date().getUTCFullYear() + 3, 0, 1)).toISOString();
  return {
    title: spec.title,
    providerAgencyId: agencies[spec.provider].id,
    recipientAgencyId: agencies[spec.recipient].id,
    purposes: spec.purposes,
    validFrom,
    validUntil,
    legalBasis: spec.legalBasis,
    communityBenefit: spec.communityBenefit ?? null,
    retentionDays: spec.retentionDays ?? null,
    grants: [
      {
        datasetId: datasets[spec.dataset].id,
        access: spec.access ?? 'ROWS',
        fields: spec.fields.map((f) => {
          const [name, transform = 'RAW'] = f.split(':');
          return { name, transform, justification: spec.justifications?.[name] ?? null };
        }),
        rowFilter: spec.rowFilter ?? null,
        linkage: spec.linkage ?? false,
        ...(spec.minCellSize ? { minCellSize: spec.minCellSize } : {}),
      },
    ],
  };
}

/**
 * Proposes each county agreement as the provider's steward, approves it as the recipient's and, where
 * it needs oversight, as the oversight board's auditor; then proposes the one that awaits oversight,
 * and sets the retention of one dataset.
 */
export async function createCountyAgreements(
  client: BrokerClient,
  agencies: SeededCounty['agencies'],
  users: readonly SeededUser[],
  datasets: Record<CountyDatasetSlug, { id: string }>,
): Promise<SeededAgreement[]> {
  const seeded: SeededAgreement[] = [];
  const approve = (key: string, id: string) =>
    client.gql<{ approveAgreement: { oversightRequired: boolean; inForceVersion: number | null } }>(
      key,
      `mutation($id: ID!) { approveAgreement(id: $id, version: 1) { oversightRequired inForceVersion } }`,
      { id },
    );
  const propose = async (spec: CountyAgreementSpec) => {
    const proposed = await client.gql<{ proposeAgreement: { id: string } }>(
      countyKey(users, `steward:${spec.provider}`),
      `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`,
      { input: countyAgreementInput(spec, agencies, datasets) },
    );
    const id = proposed.proposeAgreement.id;
    const approved = await approve(countyKey(users, `steward:${spec.recipient}`), id);
    return { id, approved: approved.approveAgreement };
  };
  for (const spec of COUNTY_AGREEMENTS) {
    const { id, approved } = await propose(spec);
    if (approved.oversightRequired && approved.inForceVersion === null) {
      await approve(countyKey(users, 'auditor:OVERSIGHT'), id);
    }
    seeded.push({
      id,
      title: spec.title,
      provider: spec.provider,
      recipient: spec.recipient,
      dataset: spec.dataset,
    });
  }
  await propose(COUNTY_PROPOSAL_AWAITING_OVERSIGHT);
  await client.gql(
    countyKey(users, `steward:${COUNTY_DATASET_PROVIDERS[COUNTY_RETENTION.dataset]}`),
    `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { id } }`,
    {
      id: datasets[COUNTY_RETENTION.dataset].id,
      input: {
        retentionDays: COUNTY_RETENTION.retentionDays,
        retentionField: COUNTY_RETENTION.retentionField,
      },
    },
  );
  return seeded;
}
