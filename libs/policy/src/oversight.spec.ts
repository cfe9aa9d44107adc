import type { FieldDefinition } from '@broker/registry';
import { oversightProblems, oversightRequired, overseenFields } from './oversight';
import { FieldTransform, type GrantContent } from './policy.types';

const field = (name: string, type: string, classification: string) =>
  ({ name, type, classification, required: false }) as unknown as FieldDefinition;
const datasets = new Map([
  [
    'd',
    {
      fields: [
        field('diagnosed', 'BOOLEAN', 'SENSITIVE'),
        field('flag', 'BOOLEAN', 'NON_SENSITIVE'),
        field('ssn', 'STRING', 'DIRECT_IDENTIFIER'),
        field('offense', 'STRING', 'SENSITIVE'),
      ],
    },
  ],
]);
const grant = (...fields: [string, FieldTransform][]): { grants: GrantContent[] } => ({
  grants: [
    {
      datasetId: 'd',
      access: 'ROWS',
      fields: fields.map(([name, transform]) => ({ name, transform })),
      rowFilter: null,
      requireConsent: false,
      minCellSize: 11,
      linkage: false,
    } as GrantContent,
  ],
});

describe('oversight of the fields a version releases', () => {
  it('takes a HASH for protection except of a BOOLEAN, whose two hashes tell its two values apart', () => {
    expect(
      oversightRequired(grant(['ssn', FieldTransform.HASH], ['offense', FieldTransform.HASH]), datasets),
    ).toBe(false);
    expect(oversightRequired(grant(['flag', FieldTransform.HASH]), datasets)).toBe(false);
    expect(overseenFields(grant(['diagnosed', FieldTransform.HASH]), datasets)).toEqual([
      {
        datasetId: 'd',
        name: 'diagnosed',
        transform: FieldTransform.HASH,
        classification: 'SENSITIVE',
        justification: null,
      },
    ]);
    expect(oversightRequired(grant(['diagnosed', FieldTransform.HASH]), datasets)).toBe(true);
    expect(oversightRequired(grant(['diagnosed', FieldTransform.RAW]), datasets)).toBe(true);
    expect(
      oversightProblems(
        { ...grant(['diagnosed', FieldTransform.HASH]), communityBenefit: 'Fewer re-bookings' },
        datasets,
      ),
    ).toEqual([
      {
        path: 'grants(d).fields(diagnosed).justification',
        message:
          'is required: diagnosed (SENSITIVE) is a BOOLEAN released HASH, which hides neither of its two values; say why the purpose needs it',
      },
    ]);
  });
});
