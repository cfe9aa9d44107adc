import { TestBroker } from '@broker/testing';

describe('data plane under concurrency: one audit chain', () => {
  let broker: TestBroker;

  afterAll(() => broker.close());

  it('answers hundreds of concurrent queries and the chain still verifies; tampering is then found', async () => {
    broker = await TestBroker.start({ LABEL: 'dp_concurrency' });
    const provider = await broker.createAgency('Provider');
    const recipient = await broker.createAgency('Recipient');
    const providerSteward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    const recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    const analysts = await Promise.all(
      Array.from({ length: 4 }, () => broker.createUser({ agencyId: recipient.id, role: 'ANALYST' })),
    );
    const auditor = await broker.createUser({ role: 'AUDITOR' });
    await broker.definePurposes('RECIDIVISM_EVALUATION');
    const dataset = await broker.registerDataset(providerSteward.apiKey, {
      slug: 'outcomes',
      title: 'Outcomes',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'score', type: 'INTEGER', classification: 'SENSITIVE' },
      ],
    });
    const csv = ['id,score', ...Array.from({ length: 200 }, (_, i) => `r${i},${i}`)].join('\n');
    expect((await broker.upload(providerSteward.apiKey, dataset.id, 'text/csv', csv)).status).toBe(200);
    await broker.activateAgreement(providerSteward.apiKey, recipientSteward.apiKey, {
      title: 'Outcomes',
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [{ datasetId: dataset.id, fields: [{ name: 'score', transform: 'GENERALIZE' }] }],
    });
    const before = (await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_event`))[0].n;

    const N = 300;
    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        broker.gql(
          analysts[i % analysts.length].apiKey,
          i % 10 === 0
            ? `{ outcomes(purpose: RECIDIVISM_EVALUATION) { nodes { score } } }` // refused: score is released as score_band
            : `{ outcomes(purpose: RECIDIVISM_EVALUATION, first: ${1 + (i % 50)}) { nodes { score_band } } }`,
          undefined,
          '/data/graphql',
        ),
      ),
    );
    answers.forEach((res, i) => {
      if (i % 10 === 0) expect(res.data).toBeNull();
      else expect(res.data!.outcomes.nodes).toHaveLength(1 + (i % 50));
    });

    const events = await broker.query<{ seq: string; decision: string }>(
      `SELECT seq, decision FROM audit_event WHERE seq > $1 ORDER BY seq`,
      [before],
    );
    expect(events).toHaveLength(N);
    expect(events.filter((e) => e.decision === 'DENY')).toHaveLength(N / 10);
    events.forEach((e, k) => expect(Number(e.seq)).toBe(before + k + 1));

    const verify = `{ verifyAuditChain { valid checked firstBrokenSeq } }`;
    const intact = await broker.gqlOk(auditor.apiKey, verify);
    expect(intact.verifyAuditChain).toEqual({ valid: true, checked: before + N, firstBrokenSeq: null });

    // A DBA rewrites the row count of one release to hide what left: found at that event.
    const target = before + 123;
    await broker.query(`ALTER TABLE audit_event DISABLE TRIGGER USER`);
    await broker.query(`UPDATE audit_event SET row_count = 0 WHERE seq = $1`, [target]);
    const changed = await broker.gqlOk(auditor.apiKey, verify);
    expect(changed.verifyAuditChain).toMatchObject({ valid: false, firstBrokenSeq: target });
  }, 120_000);
});
