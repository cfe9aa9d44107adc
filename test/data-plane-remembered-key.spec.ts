import { AuthService } from '@broker/auth';
import { Database } from '@broker/core';
import { TestBroker } from '@broker/testing';
import { shortenNextReaderTimeout } from './reader-timeout';

const Q = `{ cases(purpose: RECIDIVISM_EVALUATION) { nodes { case_id } } }`;
const FORBIDDEN_FIELD = `{ cases(purpose: RECIDIVISM_EVALUATION) { nodes { secret } } }`;
const DEACTIVATE = `mutation($id: ID!) { deactivateUser(id: $id) { id } }`;

/**
 * An instance remembers an analyst's principal and checks the key in the statement that reads the
 * rows, instead of a lookup of its own: a key rotated or a user deactivated through another instance
 * still stops at its next request there, with nothing released, recorded or audited under it.
 */
describe('data plane: a remembered key is checked with the rows it reads', () => {
  let broker: TestBroker;
  let other: TestBroker;
  let analyst: { id: string; apiKey: string };
  let recipientSteward: { apiKey: string };

  const events = async () =>
    (
      await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_event WHERE actor_user_id = $1`,
        [analyst.id],
      )
    )[0].n;
  const releases = async () =>
    (await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM release_record`))[0].n;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'remembered_key' });
    const parties = await broker.sharingParties('Probation', 'Research', 'RECIDIVISM_EVALUATION');
    recipientSteward = parties.recipientSteward;
    const dataset = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'case_id',
      fields: [
        { name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'secret', type: 'STRING', classification: 'SENSITIVE' },
      ],
    });
    await broker.gqlOk(
      parties.providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: dataset.id,
        r: [
          { case_id: 'C1', secret: 'x' },
          { case_id: 'C2', secret: 'y' },
        ],
      },
    );
    await broker.activateAgreement(parties.providerSteward.apiKey, parties.recipientSteward.apiKey, {
      title: 'Cases',
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [{ datasetId: dataset.id, fields: [{ name: 'case_id' }] }],
    });
    other = await broker.startAnother();
  });
  afterAll(async () => {
    await other.stop();
    await broker.close();
  });

  it('reads without a lookup of the key once the instance has seen it', async () => {
    analyst = await broker.createUser({
      agencyId: (await broker.query<{ id: string }>(`SELECT id FROM agency WHERE name = 'Research'`))[0].id,
      role: 'ANALYST',
    });
    const first = await other.gql(analyst.apiKey, Q, undefined, '/data/graphql');
    expect(first.data!.cases.nodes).toHaveLength(2);
    const authenticate = jest.spyOn(other.app.get(AuthService), 'authenticate');
    try {
      const again = await other.gql(analyst.apiKey, Q, undefined, '/data/graphql');
      expect(again.data!.cases.nodes).toHaveLength(2);
      expect(authenticate).not.toHaveBeenCalled();
    } finally {
      authenticate.mockRestore();
    }
  });

  it('stops a rotated key at its next request, releasing, recording and auditing nothing', async () => {
    await other.gql(analyst.apiKey, Q, undefined, '/data/graphql');
    const rotated = await broker.rotate(analyst.apiKey);
    const [before, released] = [await events(), await releases()];
    for (const query of [Q, FORBIDDEN_FIELD]) {
      const res = await other.gql(analyst.apiKey, query, undefined, '/data/graphql');
      expect([res.status, res.data, res.errors?.[0].extensions?.code]).toEqual([
        401,
        null,
        'UNAUTHENTICATED',
      ]);
    }
    expect([await events(), await releases()]).toEqual([before, released]);
    const fresh = await other.gql(rotated, Q, undefined, '/data/graphql');
    expect(fresh.data!.cases.nodes).toHaveLength(2);
    analyst.apiKey = rotated;
  });

  it('stops a rotated key whose read ran out of time, refusing and auditing nothing under it', async () => {
    expect((await other.gql(analyst.apiKey, Q, undefined, '/data/graphql')).data!.cases.nodes).toHaveLength(
      2,
    );
    const rotated = await broker.rotate(analyst.apiKey);
    const [before, released] = [await events(), await releases()];
    // The one statement that reads the rows and checks the key runs past the readers' time limit
    // (shortened here on the connection that reads it).
    const db = other.app.get(Database);
    const read = db.read.bind(db);
    const reads = jest
      .spyOn(db, 'read')
      .mockImplementation((sql, params, options) =>
        read(`SELECT q.*, pg_sleep(5)::text AS stall FROM (${sql}) AS q`, params, options),
      );
    const timeout = shortenNextReaderTimeout('200ms');
    let res: Awaited<ReturnType<typeof other.gql>>;
    try {
      res = await other.gql(analyst.apiKey, Q, undefined, '/data/graphql');
      expect(reads).toHaveBeenCalledTimes(1);
      expect(timeout.armed()).toBe(false);
    } finally {
      reads.mockRestore();
      timeout.restore();
    }
    // Not "too costly": whoever holds the old key learns nothing, and nothing is audited under it.
    expect([res.status, res.data, res.errors?.[0].extensions?.code]).toEqual([401, null, 'UNAUTHENTICATED']);
    expect([await events(), await releases()]).toEqual([before, released]);
    analyst.apiKey = rotated;
    expect((await other.gql(rotated, Q, undefined, '/data/graphql')).data!.cases.nodes).toHaveLength(2);
  });

  it('stops a deactivated user at the next request on every instance', async () => {
    // Remembered on the other instance, with the policy compiled: the one-statement path.
    expect((await other.gql(analyst.apiKey, Q, undefined, '/data/graphql')).data!.cases.nodes).toHaveLength(
      2,
    );
    await broker.gqlOk(recipientSteward.apiKey, DEACTIVATE, { id: analyst.id });
    const [before, released] = [await events(), await releases()];
    const res = await other.gql(analyst.apiKey, Q, undefined, '/data/graphql');
    expect([res.status, res.data, JSON.stringify(res).includes('C1')]).toEqual([401, null, false]);
    // Two root fields (the snapshot path) and an invalid document: refused the same way.
    const two = await other.gql(
      analyst.apiKey,
      `{ a: ${Q.slice(2, -2)} b: ${Q.slice(2, -2)} }`,
      undefined,
      '/data/graphql',
    );
    expect(two.status).toBe(401);
    expect((await other.gql(analyst.apiKey, '{ nope', undefined, '/data/graphql')).status).toBe(401);
    expect([await events(), await releases()]).toEqual([before, released]);
  });
});
