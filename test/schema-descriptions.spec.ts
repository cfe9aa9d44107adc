import { GraphQLSchemaHost } from '@nestjs/graphql';
import {
  type GraphQLObjectType,
  type GraphQLSchema,
  type IntrospectionQuery,
  buildClientSchema,
  getIntrospectionQuery,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isSpecifiedScalarType,
  isIntrospectionType,
} from 'graphql';
import { TestBroker } from '@broker/testing';

/** Every type, field, argument, input field and enum value of a schema that has no description. */
function undescribed(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const has = (d: string | null | undefined) => typeof d === 'string' && d.trim().length > 0;
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || isIntrospectionType(type) || isSpecifiedScalarType(type)) continue;
    if (!has(type.description)) missing.push(type.name);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!has(field.description)) missing.push(`${type.name}.${field.name}`);
        for (const arg of field.args) {
          if (!has(arg.description)) missing.push(`${type.name}.${field.name}(${arg.name})`);
        }
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        if (!has(field.description)) missing.push(`${type.name}.${field.name}`);
      }
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) {
        if (!has(value.description)) missing.push(`${type.name}.${value.name}`);
      }
    }
  }
  return missing.sort();
}

describe('schema descriptions, for introspection and GraphiQL', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'descriptions' });
  });
  afterAll(() => broker.close());

  it('describes every type, field, argument, input field and enum value of the data plane', async () => {
    const cbo = await broker.createAgency('CBO');
    const research = await broker.createAgency('Research');
    const steward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    const researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    const analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    await broker.definePurposes('RECIDIVISM_EVALUATION');
    const dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'programs',
      title: 'Programs',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
        { name: 'at', type: 'DATETIME', classification: 'NON_SENSITIVE' },
        { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
        { name: 'x', type: 'FLOAT', classification: 'NON_SENSITIVE' },
        { name: 'ok', type: 'BOOLEAN', classification: 'NON_SENSITIVE' },
        { name: 'name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
      ],
    });
    await broker.activateAgreement(steward.apiKey, researchSteward.apiKey, {
      title: 'Programs for research',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: [
            { name: 'dob' },
            { name: 'at' },
            { name: 'n', transform: 'GENERALIZE' },
            { name: 'x' },
            { name: 'ok' },
            { name: 'name', transform: 'HASH' },
          ],
        },
      ],
    });
    const result = await broker.gql(analyst.apiKey, getIntrospectionQuery(), undefined, '/data/graphql');
    expect(result.errors).toBeUndefined();
    const schema = buildClientSchema(result.data as unknown as IntrospectionQuery);
    expect(Object.keys(schema.getQueryType()!.getFields())).toEqual(['programs', 'programs_aggregate']);
    expect(undescribed(schema)).toEqual([]);
    expect((schema.getType('Programs') as GraphQLObjectType).getFields().name_hash.description).toMatch(
      /^From field `name` \(STRING\) of `programs`, released as HASH: /,
    );
  });

  it('describes every type, field, argument, input field and enum value of the control plane', () => {
    expect(undescribed(broker.app.get(GraphQLSchemaHost).schema)).toEqual([]);
  });
});
