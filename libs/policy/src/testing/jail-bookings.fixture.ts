/**
 * A dataset and a grant of it shared by the policy library's unit tests: bookings with an id, a
 * person id, an SSN, a date of birth, an age, a flag and a charge, and a grant releasing some of them
 * RAW, as HASH and generalised.
 */
import type { FieldDefinition, FieldType } from '@broker/registry';
import {
  type DatasetShape,
  FieldTransform,
  type FieldTypeName,
  GrantAccess,
  type GrantContent,
} from '../policy.types';

/** A field of the given type, SENSITIVE, without identity role. */
export const field = (name: string, type: FieldTypeName) =>
  ({
    name,
    type: type as FieldType,
    classification: 'SENSITIVE',
    identity: null,
    required: false,
    description: null,
  }) as FieldDefinition;

/** The bookings dataset under the given id. */
export function jailBookings(id: string): DatasetShape {
  return {
    id,
    slug: 'jail_bookings',
    typeName: 'JailBookings',
    keyField: 'booking_id',
    subjectField: 'person_id',
    fields: [
      field('booking_id', 'STRING'),
      field('person_id', 'STRING'),
      field('ssn', 'STRING'),
      field('dob', 'DATE'),
      field('age', 'INTEGER'),
      field('released', 'BOOLEAN'),
      field('charge', 'STRING'),
    ],
  };
}

/** A ROWS grant of the dataset: the id RAW, the SSN as HASH, the date of birth and age generalised. */
export const jailBookingsGrant = (datasetId: string, patch: Partial<GrantContent> = {}): GrantContent => ({
  datasetId,
  access: GrantAccess.ROWS,
  fields: [
    { name: 'booking_id', transform: FieldTransform.RAW },
    { name: 'ssn', transform: FieldTransform.HASH },
    { name: 'dob', transform: FieldTransform.GENERALIZE },
    { name: 'age', transform: FieldTransform.GENERALIZE },
    { name: 'released', transform: FieldTransform.RAW },
  ],
  rowFilter: { charge: { $ne: 'juvenile' } },
  requireConsent: false,
  minCellSize: 11,
  linkage: false,
  ...patch,
});
