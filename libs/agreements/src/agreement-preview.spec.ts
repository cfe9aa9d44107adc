import type { FieldDefinition, FieldType } from '@broker/registry';
import {
  type AgreementContent,
  type DatasetShape,
  FieldTransform,
  GrantAccess,
  type GrantContent,
  PolicyError,
} from '@broker/policy';
import { previewContent } from './agreement-preview';

const field = (name: string, type: `${FieldType}`) =>
  ({
    name,
    type: type as FieldType,
    classification: 'SENSITIVE',
    identity: null,
    required: false,
    description: null,
  }) as FieldDefinition;

const bookings: DatasetShape = {
  id: 'ds-bookings',
  slug: 'jail_bookings',
  typeName: 'JailBookings',
  keyField: 'booking_id',
  subjectField: 'person_id',
  fields: [
    field('booking_id', 'STRING'),
    field('person_id', 'STRING'),
    field('dob', 'DATE'),
    field('booked_at', 'DATETIME'),
    field('age', 'INTEGER'),
    field('released', 'BOOLEAN'),
  ],
};
const cases: DatasetShape = {
  id: 'ds-cases',
  slug: 'court_cases',
  typeName: 'CourtCases',
  keyField: 'case_id',
  subjectField: null,
  fields: [field('case_id', 'STRING'), field('charge', 'STRING')],
};

const grant = (overrides: Partial<GrantContent>): GrantContent => ({
  datasetId: bookings.id,
  access: GrantAccess.ROWS,
  fields: [],
  rowFilter: null,
  requireConsent: false,
  minCellSize: 11,
  linkage: false,
  ...overrides,
});

const content = (grants: GrantContent[]): AgreementContent => ({
  title: 'T',
  providerAgencyId: 'a',
  recipientAgencyId: 'b',
  purposes: ['RECIDIVISM_EVALUATION', 'RESEARCH'],
  validFrom: '2026-01-01T00:00:00.000Z',
  validUntil: '2027-01-01T00:00:00.000Z',
  retentionDays: null,
  legalBasis: null,
  termsOfUse: null,
  grants,
});

const shapes = new Map([
  [bookings.id, bookings],
  [cases.id, cases],
]);

describe('previewContent', () => {
  it('releases every field under the name and type of the transform table', () => {
    const [first] = previewContent(
      content([
        grant({
          fields: [
            { name: 'age', transform: FieldTransform.GENERALIZE },
            { name: 'booked_at', transform: FieldTransform.GENERALIZE },
            { name: 'booking_id', transform: FieldTransform.RAW },
            { name: 'dob', transform: FieldTransform.RAW },
            { name: 'person_id', transform: FieldTransform.HASH },
            { name: 'released', transform: FieldTransform.RAW },
          ],
        }),
      ]),
      shapes,
    );
    expect(first.grants[0].fields).toEqual([
      { name: 'age_band', type: 'Int', transform: 'GENERALIZE', sourceField: 'age' },
      { name: 'booked_at_year', type: 'Int', transform: 'GENERALIZE', sourceField: 'booked_at' },
      { name: 'booking_id', type: 'String', transform: 'RAW', sourceField: 'booking_id' },
      { name: 'dob', type: 'Date', transform: 'RAW', sourceField: 'dob' },
      { name: 'person_id_hash', type: 'String', transform: 'HASH', sourceField: 'person_id' },
      { name: 'released', type: 'Boolean', transform: 'RAW', sourceField: 'released' },
    ]);
  });

  it('gives every purpose every grant, with its conditions', () => {
    const previews = previewContent(
      content([
        grant({
          access: GrantAccess.AGGREGATE_ONLY,
          fields: [{ name: 'age', transform: FieldTransform.RAW }],
          rowFilter: { age: { $gte: 18 } },
          requireConsent: true,
          minCellSize: 20,
          linkage: true,
        }),
        grant({ datasetId: cases.id, fields: [{ name: 'charge', transform: FieldTransform.GENERALIZE }] }),
      ]),
      shapes,
    );
    expect(previews.map((p) => p.purpose)).toEqual(['RECIDIVISM_EVALUATION', 'RESEARCH']);
    for (const { grants } of previews) {
      expect(grants.map((g) => g.datasetId)).toEqual([bookings.id, cases.id]);
      expect(grants[0]).toMatchObject({
        access: 'AGGREGATE_ONLY',
        rowFilter: { age: { $gte: 18 } },
        requireConsent: true,
        minCellSize: 20,
        personKey: true,
      });
      expect(grants[1]).toMatchObject({
        access: 'ROWS',
        rowFilter: null,
        personKey: false,
        fields: [{ name: 'charge_prefix', type: 'String', transform: 'GENERALIZE', sourceField: 'charge' }],
      });
    }
  });

  it('refuses content that does not fit its dataset, as the data plane would', () => {
    expect(() =>
      previewContent(content([grant({ fields: [{ name: 'nope', transform: FieldTransform.RAW }] })]), shapes),
    ).toThrow(PolicyError);
    expect(() =>
      previewContent(
        content([grant({ fields: [{ name: 'released', transform: FieldTransform.GENERALIZE }] })]),
        shapes,
      ),
    ).toThrow(PolicyError);
  });
});
