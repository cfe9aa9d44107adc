import type { Page } from 'playwright-core';
import { type AdminHarness, axeViolations, signIn, startAdminHarness } from './admin-browser';

/**
 * Every page a steward and an auditor work in passes axe-core (WCAG 2.1 A and AA, and best
 * practices): the datasets, a dataset (its retention form refusing an input and asking before it
 * destroys records), the agreements, an agreement with its terms and versions, the
 * proposal form with its live preview, subject access; the oversight queue, the audit log, the
 * chain's verification and the access chart; an analyst's guide to querying and its linked count.
 */
describe('admin UI: accessibility of the working pages (browser)', () => {
  let h: AdminHarness;
  let page: Page;
  let providerKey: string;
  let auditorKey: string;
  let analystKey: string;
  let datasetId: string;
  let agreementId: string;

  beforeAll(async () => {
    h = await startAdminHarness('admin_a11y');
    const provider = await h.broker.createAgency('County Sheriff', 'law_enforcement');
    const recipient = await h.broker.createAgency('Research Office', 'research');
    const providerSteward = await h.broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    const recipientSteward = await h.broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    providerKey = providerSteward.apiKey;
    analystKey = (await h.broker.createUser({ agencyId: recipient.id, role: 'ANALYST' })).apiKey;
    auditorKey = (await h.broker.oversightAuditor()).apiKey;
    await h.broker.definePurposes('RESEARCH');
    const dataset = await h.broker.registerDataset(providerKey, {
      slug: 'jail_stays',
      title: 'Jail stays',
      keyField: 'booking_id',
      subjectField: 'person_id',
      fields: [
        { name: 'booking_id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'person_id', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'booked_on', type: 'DATE', classification: 'NON_SENSITIVE' },
        { name: 'charge', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    datasetId = dataset.id;
    const csv = ['booking_id,person_id,booked_on,charge']
      .concat(
        Array.from({ length: 30 }, (_, i) => `B${i},P${i % 12},2024-0${1 + (i % 9)}-1${i % 10},C${i % 4}`),
      )
      .join('\n');
    expect((await h.broker.upload(providerKey, datasetId, 'text/csv', csv)).status).toBe(200);
    agreementId = await h.broker.activateAgreement(providerKey, recipientSteward.apiKey, {
      title: 'Jail stays for research',
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes: ['RESEARCH'],
      validFrom: '2024-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId,
          fields: [
            { name: 'booking_id' },
            { name: 'booked_on', transform: 'GENERALIZE' },
            { name: 'charge' },
          ],
        },
      ],
    });
    ({ page } = await h.newPage(1280, { axe: true }));
  }, 180_000);
  afterAll(() => h?.close());

  /**
   * Signs in with `key`, opens each page (path, text that shows it is ready, and what to do there
   * first, if anything), and returns axe-core's violations.
   */
  const violationsOf = async (
    key: string,
    pages: [path: string, ready: string, then?: () => Promise<void>][],
  ) => {
    await signIn(page, key);
    const found: { page: string }[] = [];
    for (const [path, ready, then] of pages) {
      await page.goto(`/admin${path}`);
      await page.getByText(ready).first().waitFor();
      await then?.();
      found.push(...(await axeViolations(page)).map((v) => ({ page: path, ...v })));
    }
    return found;
  };

  /** Types a retention into a dataset's retention form, asks to save it, and waits for `shows`. */
  const retentionTyped = (days: string, field: string, shows: string) => async () => {
    const form = page.getByRole('region', { name: 'Retention' });
    await form.getByLabel('Retention (days)').fill(days);
    await form.getByLabel('Measured from').selectOption(field);
    await form.getByRole('button', { name: 'Save retention' }).click();
    await form.getByText(shows).waitFor();
  };

  it("has no violation on a steward's pages", async () => {
    const found = await violationsOf(providerKey, [
      ['/datasets', 'Jail stays'],
      [`/datasets/${datasetId}`, 'booking_id'],
      // The retention form refusing days that are no number, each problem at its input ...
      [
        `/datasets/${datasetId}`,
        'booking_id',
        retentionTyped('ninety', 'booked_on', 'The retention was not changed'),
      ],
      // ... and asking before a retention destroys records, saying how many.
      [
        `/datasets/${datasetId}`,
        'booking_id',
        retentionTyped('90', 'booked_on', 'would be destroyed at the next daily run'),
      ],
      ['/agreements', 'Jail stays for research'],
      [`/agreements/${agreementId}`, 'Jail stays for research'],
      ['/agreements/new', 'Propose an agreement'],
      ['/subject-access', 'Subject access'],
    ]);
    expect(found).toEqual([]);
  });

  it("has no violation on an oversight auditor's pages", async () => {
    const found = await violationsOf(auditorKey, [
      ['/oversight', 'Oversight'],
      ['/audit', 'newest first'],
      ['/audit/verify', 'Verify the chain'],
      ['/audit/chart', 'Accesses and refusals'],
    ]);
    expect(found).toEqual([]);
  });

  it("has no violation on an analyst's pages", async () => {
    const found = await violationsOf(analystKey, [
      ['/analyst', 'jail_stays'],
      ['/linked-count', 'Linked count'],
    ]);
    expect(found).toEqual([]);
  });
});
