import { join } from 'node:path';
import { type AdminHarness, startAdminHarness } from './admin-browser';

interface AxeResult {
  violations: { id: string; impact: string; description: string; nodes: { target: string[] }[] }[];
  passes: unknown[];
}

/**
 * The public register in a real browser: readable without JavaScript, and free of the accessibility
 * violations axe-core finds (WCAG 2.1 A and AA rules, and best practices).
 */
describe('public register (browser)', () => {
  let h: AdminHarness;
  const TITLE = 'Re-entry outcomes for recidivism evaluation';

  beforeAll(async () => {
    h = await startAdminHarness('register_ui');
    const { broker } = h;
    const cbo = await broker.createAgency('Second Chance Re-entry');
    const research = await broker.createAgency('County Research Office');
    const cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    const researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    const analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    await broker.definePurposes('RECIDIVISM_EVALUATION');
    const dataset = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'reentry_participation',
      title: 'Re-entry participation',
      description: 'Enrollments in re-entry programs.',
      keyField: 'enrollment_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'program', type: 'STRING', classification: 'SENSITIVE', description: 'The program' },
        { name: 'enrolled_on', type: 'DATE', classification: 'QUASI_IDENTIFIER' },
      ],
    });
    await broker.gqlOk(
      cboSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: dataset.id,
        r: [1, 2, 3].map((i) => ({ enrollment_id: `E${i}`, program: 'JOBS', enrolled_on: '2024-01-0' + i })),
      },
    );
    await broker.activateAgreement(cboSteward.apiKey, researchSteward.apiKey, {
      title: TITLE,
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      retentionDays: 365,
      legalBasis: 'County data-sharing ordinance 12.4',
      communityBenefit: 'The county funds the programs that keep people out of jail.',
      grants: [
        {
          datasetId: dataset.id,
          fields: [
            { name: 'program', justification: 'Outcomes are compared program by program.' },
            { name: 'enrolled_on', transform: 'GENERALIZE' },
          ],
          rowFilter: { program: { $in: ['JOBS', 'HOUSING'] } },
        },
      ],
    });
    const read = await broker.gql(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`,
      undefined,
      '/data/graphql',
    );
    expect(read.errors).toBeUndefined();
  }, 120_000);
  afterAll(() => h?.close());

  it('reads without JavaScript: every agreement, its fields explained, its monthly use and the audit head', async () => {
    const context = await h.browser.newContext({ baseURL: h.baseUrl, javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await page.goto('/register');
      await page
        .getByRole('heading', { level: 1, name: 'Public register of data-sharing agreements' })
        .waitFor();
      const article = page.getByRole('article', { name: TITLE });
      await article.getByText('Outcomes are compared program by program.').waitFor();
      await article.getByText('The county funds the programs that keep people out of jail.').waitFor();
      // A coarsened field says how it is coarsened: a date to its year, not every kind of coarsening.
      const fields = article.getByRole('table', { name: 'Fields shared from “Re-entry participation”' });
      expect(
        await fields
          .getByRole('row', { name: /enrolled_on_year/ })
          .locator('td')
          .nth(1)
          .textContent(),
      ).toBe('coarsened: only the year of the date');
      await article.getByRole('img', { name: /Data requests per month/ }).waitFor();
      const months = article.getByRole('table', { name: 'Data requests per month (UTC)' });
      expect(await months.getByRole('row').nth(1).locator('td').allTextContents()).toEqual(['1', '0', '3']);
      await page.getByText(/Its latest entry is number \d+/).waitFor();
      await h.screenshot(page, 'register');
    } finally {
      await context.close();
    }
  });

  it('passes axe-core with no violations', async () => {
    // The page forbids every script (CSP); the test lets only axe in.
    const context = await h.browser.newContext({ baseURL: h.baseUrl, bypassCSP: true });
    try {
      const page = await context.newPage();
      await page.goto('/register');
      await page.addScriptTag({ path: join(__dirname, '..', 'node_modules', 'axe-core', 'axe.min.js') });
      const result = await page.evaluate<AxeResult>(
        `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })`,
      );
      expect(
        result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target) })),
      ).toEqual([]);
      expect(result.passes.length).toBeGreaterThan(10);
    } finally {
      await context.close();
    }
  });
});
