import { Field, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';
import { AgencyModel } from '../agency/agency.model';
import { Classification, FieldType, IdentityRole } from './dataset-schema';

registerEnumType(FieldType, {
  name: 'FieldType',
  description: "A field's type; every value ingested is checked against it.",
  valuesMap: {
    STRING: { description: 'Text.' },
    INTEGER: { description: 'A whole number (64-bit).' },
    FLOAT: { description: 'A number (double precision).' },
    BOOLEAN: { description: 'true or false.' },
    DATE: { description: "A calendar date, 'YYYY-MM-DD'." },
    DATETIME: { description: 'An instant, ISO 8601.' },
  },
});
registerEnumType(Classification, {
  name: 'Classification',
  description:
    'How sensitive a field is; releasing DIRECT_IDENTIFIER or SENSITIVE fields other than as HASH needs oversight.',
  valuesMap: {
    DIRECT_IDENTIFIER: { description: 'Identifies a person on its own (a name, an SSN, an id number).' },
    QUASI_IDENTIFIER: {
      description: 'Identifies a person in combination (date of birth, postal code, sex).',
    },
    SENSITIVE: {
      description: 'About a person, and harmful if disclosed (a charge, a program, a health fact).',
    },
    NON_SENSITIVE: { description: 'Neither identifying nor sensitive.' },
  },
});
registerEnumType(IdentityRole, {
  name: 'IdentityRole',
  description: 'What a field holds about a person, for record linkage; every field with one takes part.',
  valuesMap: {
    FIRST_NAME: { description: 'Given name (must be DIRECT_IDENTIFIER).' },
    MIDDLE_NAME: { description: 'Middle name (must be DIRECT_IDENTIFIER).' },
    LAST_NAME: { description: 'Family name (must be DIRECT_IDENTIFIER).' },
    DATE_OF_BIRTH: { description: 'Date of birth (at least QUASI_IDENTIFIER).' },
    SEX: { description: 'Sex (at least QUASI_IDENTIFIER).' },
    SSN: { description: 'A US social security number (must be DIRECT_IDENTIFIER).' },
    ZIP: { description: 'A postal code of any country (at least QUASI_IDENTIFIER).' },
    ID_NUMBER: {
      description:
        'Any other person identifier: state id, licence, foreign national id (must be DIRECT_IDENTIFIER).',
    },
    ADDRESS: { description: 'A street line (at least QUASI_IDENTIFIER).' },
    CITY: { description: 'A city, town or suburb (at least QUASI_IDENTIFIER).' },
  },
});

@ObjectType('DatasetField', { description: 'A field of a dataset, as registered.' })
export class DatasetFieldModel {
  @Field({ description: 'Its name: the column of the records, and the released name when granted RAW.' })
  name!: string;
  @Field(() => FieldType, { description: 'Its type.' }) type!: FieldType;
  @Field(() => Classification, { description: 'How sensitive it is.' }) classification!: Classification;
  @Field(() => IdentityRole, { nullable: true, description: 'What it holds about a person, for linkage.' })
  identity!: IdentityRole | null;
  @Field({ description: 'Whether every record must have a value.' }) required!: boolean;
  @Field(() => String, { nullable: true, description: "The provider's description of the field." })
  description!: string | null;
}

/** A dataset's metadata: the catalog shows it to every signed-in user; its records stay behind agreements. */
@ObjectType('Dataset', {
  description:
    "A dataset's metadata: the catalog shows it to every signed-in user; its records stay behind agreements.",
})
export class DatasetModel {
  @Field(() => ID, { description: 'The dataset id.' }) id!: string;
  @Field({ description: 'Its unique slug: the name of its root fields on the data plane.' }) slug!: string;
  @Field({ description: 'Its title.' }) title!: string;
  @Field(() => String, { nullable: true, description: 'What it holds, in words.' })
  description!: string | null;
  @Field(() => AgencyModel, { description: 'The agency that provides it.' }) provider?: AgencyModel;
  providerAgencyId!: string;
  @Field({ description: 'The field holding the unique record key.' }) keyField!: string;
  @Field(() => String, {
    nullable: true,
    description: "The field holding the provider's person id (consent).",
  })
  subjectField!: string | null;
  @Field(() => [DatasetFieldModel], { description: 'Its fields, in registration order.' })
  fields!: DatasetFieldModel[];
  @Field(() => DateTimeScalar, { description: 'When it was registered.' }) createdAt!: Date;
  @Field(() => Int, {
    nullable: true,
    description: 'Records whose retentionField is older than this many days are destroyed daily.',
  })
  retentionDays!: number | null;
  @Field(() => String, {
    nullable: true,
    description: 'The DATE or DATETIME field retention is measured from.',
  })
  retentionField!: string | null;
}

@InputType({ description: 'A field of a dataset to register.' })
export class FieldInput {
  @Field({ description: 'Its name: `^[a-z][a-z0-9_]{0,62}$`; no name another field could be released as.' })
  name!: string;
  @Field(() => FieldType, { description: 'Its type.' }) type!: FieldType;
  @Field(() => Classification, {
    description: 'How sensitive it is; never below what its identity role needs.',
  })
  classification!: Classification;
  @Field(() => IdentityRole, { nullable: true, description: 'What it holds about a person, for linkage.' })
  identity?: IdentityRole | null;
  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description: 'Whether every record must have a value.',
  })
  required?: boolean | null;
  @Field(() => String, { nullable: true, description: 'What the field holds, in words.' })
  description?: string | null;
}

@InputType({ description: "A dataset to register; its provider is the steward's agency." })
export class RegisterDatasetInput {
  @Field({ description: '`^[a-z][a-z0-9_]{2,62}$`, unique; names the data-plane root field.' }) slug!: string;
  @Field({ description: 'Its title.' }) title!: string;
  @Field(() => String, { nullable: true, description: 'What it holds, in words.' })
  description?: string | null;
  @Field({ description: 'The unique record key; re-ingesting a key updates the record.' }) keyField!: string;
  @Field(() => String, { nullable: true, description: "The provider's own person id, used for consent." })
  subjectField?: string | null;
  @Field(() => [FieldInput], { description: 'Its fields; they never change once registered.' })
  fields!: FieldInput[];
  @Field(() => Int, {
    nullable: true,
    description:
      'Records whose DATE/DATETIME retentionField is older than this are destroyed (audited, counted).',
  })
  retentionDays?: number | null;
  @Field(() => String, {
    nullable: true,
    description: 'The DATE or DATETIME field retention is measured from.',
  })
  retentionField?: string | null;
  @Field(() => [[String]], {
    nullable: true,
    description:
      'Indexes to build besides those the broker builds itself (the key, the default page order, what row filters use): each a list of 1 to 4 field names.',
  })
  indexes?: string[][] | null;
}

/** Fields, key and slug never change. */
@InputType({ description: 'What a steward may change of a dataset: fields, key and slug never change.' })
export class UpdateDatasetInput {
  @Field(() => String, { nullable: true, description: 'A new title.' }) title?: string | null;
  @Field(() => String, { nullable: true, description: 'A new description.' }) description?: string | null;
  @Field(() => Int, { nullable: true, description: 'Days of retention; 0 removes retention.' })
  retentionDays?: number | null;
  @Field(() => String, {
    nullable: true,
    description: 'The DATE or DATETIME field retention is measured from.',
  })
  retentionField?: string | null;
  @Field(() => [[String]], {
    nullable: true,
    description:
      'More indexes to build on the record table, each a list of field names (in order), for the filters and orderings analysts use; built without blocking ingestion or queries. Existing indexes stay.',
  })
  indexes?: string[][] | null;
}

@ObjectType('RowError', { description: 'Why one row of a batch is invalid.' })
export class RowErrorModel {
  @Field(() => Int, {
    description: '0-based index of the data row in the batch (a CSV header is not a row).',
  })
  row!: number;
  @Field(() => String, { nullable: true, description: 'The field at fault, when one is.' })
  field!: string | null;
  @Field({ description: 'What is wrong, in words a person can act on.' }) message!: string;
}

@ObjectType('IngestReport', {
  description: 'What a batch did: all of it written, or nothing when any row is invalid.',
})
export class IngestReportModel {
  @Field(() => Int, { description: 'Records written with new keys.' }) inserted!: number;
  @Field(() => Int, { description: 'Records whose key existed, updated.' }) updated!: number;
  @Field(() => Int, { description: 'How many rows were invalid; when any is, nothing was written.' })
  rejected!: number;
  @Field(() => [RowErrorModel], { description: 'Every error found (up to 1,000).' }) errors!: RowErrorModel[];
}
