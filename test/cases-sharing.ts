import type { TestBroker } from '@broker/testing';

/** An agreement's input of the cases sharing: overrides replace its fields (title, window, grants…). */
export type CasesInput = (overrides?: Record<string, unknown>) => Record<string, unknown>;

/**
 * The sharing the agreement races' specs play on: Probation shares a `cases` dataset (one field,
 * `case_id`, records `cases`: C1 and C2 unless given) with Research for RECIDIVISM_EVALUATION. Returns its parties, its
 * dataset, the input of an agreement of all of it (for ever, `case_id` released) and `activate`,
 * which proposes and approves one (its id).
 */
export async function casesSharing(broker: TestBroker, cases: readonly string[] = ['C1', 'C2']) {
  const parties = await broker.sharingParties('Probation', 'Research', 'RECIDIVISM_EVALUATION');
  const dataset = await broker.registerDataset(parties.providerSteward.apiKey, {
    slug: 'cases',
    title: 'Cases',
    keyField: 'case_id',
    fields: [{ name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' }],
  });
  await broker.gqlOk(
    parties.providerSteward.apiKey,
    `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
    { id: dataset.id, r: cases.map((id) => ({ case_id: id })) },
  );
  const input: CasesInput = (overrides = {}) => ({
    title: 'Cases',
    providerAgencyId: parties.providerAgency.id,
    recipientAgencyId: parties.recipientAgency.id,
    purposes: ['RECIDIVISM_EVALUATION'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [{ datasetId: dataset.id, fields: [{ name: 'case_id' }] }],
    ...overrides,
  });
  const activate = (overrides: Record<string, unknown> = {}) =>
    broker.activateAgreement(
      parties.providerSteward.apiKey,
      parties.recipientSteward.apiKey,
      input(overrides),
    );
  return { parties, dataset, input, activate };
}
