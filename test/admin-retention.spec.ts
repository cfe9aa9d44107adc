import type { Page } from 'playwright-core';
import { type AdminHarness, axeViolations, signIn, startAdminHarness } from './admin-browser';

/**
 * A dataset's retention and title in the admin UI, in a real browser: its provider's steward sets,
 * lengthens, shortens (asked first, with the days and how many records would be destroyed), moves
 * and removes retention, each change read back through the API; an invalid retention is refused with
 * the form's or the broker's own message and changes nothing; other roles cannot edit. Screenshots
 * land in test-output/admin/.
 */
describe('admin UI: a dataset’s retention, title and description (browser)', () => {
  let h: AdminHarness;
  let page: Page;
  let stewardKey: string;
  let otherStewardKey: string;
  let analystKey: string;
  let auditorKey: string;
  let datasetId: string;

  beforeAll(async () => {
    h = await startAdminHarness('admin_retention');
    const probation = await h.broker.createAgency('Probation Department', 'probation');
    const research = await h.broker.createAgency('Research Office', 'research');
    stewardKey = (await h.broker.createUser({ agencyId: probation.id, role: 'STEWARD' })).apiKey;
    otherStewardKey = (await h.broker.createUser({ agencyId: research.id, role: 'STEWARD' })).apiKey;
    analystKey = (await h.broker.createUser({ agencyId: probation.id, role: 'ANALYST' })).apiKey;
    auditorKey = (await h.broker.oversightAuditor()).apiKey;
    datasetId = (
      await h.broker.registerDataset(stewardKey, {
        slug: 'probation_cases',
        title: 'Probation cases',
        keyField: 'case_id',
        fields: [
          { name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
          { name: 'opened_on', type: 'DATE', classification: 'NON_SENSITIVE' },
          { name: 'officer', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'closed_at', type: 'DATETIME', classification: 'NON_SENSITIVE' },
        ],
      })
    ).id;
    // Ten records, dated far from any cutoff the tests set: the counts cannot move while they run.
    const ago = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
    const records = [
      ...[0, 1, 2].map((i) => ({ case_id: `C${i}`, opened_on: ago(600).slice(0, 10), closed_at: ago(500) })),
      ...[3, 4, 5, 6].map((i) => ({
        case_id: `C${i}`,
        opened_on: ago(200).slice(0, 10),
        closed_at: ago(100),
      })),
      ...[7, 8].map((i) => ({ case_id: `C${i}`, opened_on: ago(10).slice(0, 10), closed_at: ago(5) })),
      { case_id: 'C9', opened_on: null, closed_at: null },
    ];
    await h.broker.gqlOk(
      stewardKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: datasetId, r: records },
    );
    ({ page } = await h.newPage(1280, { axe: true }));
  }, 180_000); // the first file of a run builds the admin UI and GraphiQL

  afterAll(() => h?.close());

  /** The dataset as the API answers it now. */
  const stored = async () =>
    (
      await h.broker.gqlOk<{
        dataset: {
          title: string;
          description: string | null;
          retentionDays: number | null;
          retentionField: string | null;
        };
      }>(
        stewardKey,
        `query($id: ID!) { dataset(id: $id) { title description retentionDays retentionField } }`,
        {
          id: datasetId,
        },
      )
    ).dataset;
  const retentionOf = async () => {
    const { retentionDays, retentionField } = await stored();
    return { retentionDays, retentionField };
  };
  const section = (name: string) => page.getByRole('region', { name });
  const retention = () => section('Retention');
  const fact = (term: string) =>
    page.locator('dl.facts dt', { hasText: term }).locator('xpath=following-sibling::dd[1]');
  /** The updateDataset requests the page sends, to see that a refused input sent none. */
  const updates: string[] = [];

  /** Types a retention into the form and asks to save it. */
  const saveRetention = async (days: string, field: string) => {
    await retention().getByLabel('Retention (days)').fill(days);
    await retention().getByLabel('Measured from').selectOption(field);
    await retention()
      .getByRole('button', { name: /^(Save|Remove) retention$/ })
      .click();
  };
  const confirmation = () => retention().getByRole('group', { name: /retention/ });
  /** What the broker counts for a retention, through the API. */
  const preview = async (retentionDays: number | null, retentionField: string | null) =>
    (
      await h.broker.gqlOk<{
        retentionPreview: { destroyed: number; destroyedByCurrent: number; records: number };
      }>(
        stewardKey,
        `query($d: ID!, $days: Int, $field: String) {
          retentionPreview(datasetId: $d, retentionDays: $days, retentionField: $field) { destroyed destroyedByCurrent records } }`,
        { d: datasetId, days: retentionDays, field: retentionField },
      )
    ).retentionPreview;
  const saved = (text: string) => retention().getByRole('status').filter({ hasText: text }).waitFor();

  it('lets the provider’s steward set, lengthen, shorten, move and remove retention, asking before records go sooner', async () => {
    page.on('request', (request) => {
      if (request.url().endsWith('/graphql') && request.postData()?.includes('updateDataset'))
        updates.push(request.postData()!);
    });
    await signIn(page, stewardKey);
    await page.goto(`/admin/datasets/${datasetId}`);
    await page.getByRole('heading', { level: 1, name: 'Probation cases' }).waitFor();
    expect(await fact('Retention').textContent()).toBe('not set: records are kept');
    await retention().getByText('No retention is set').waitFor();
    // Only the DATE and DATETIME fields can measure retention.
    expect(await retention().getByLabel('Measured from').locator('option').allTextContents()).toEqual([
      'None',
      'opened_on (DATE)',
      'closed_at (DATETIME)',
    ]);
    // Nothing typed, nothing to save.
    expect(await retention().getByRole('button', { name: 'Save retention' }).isDisabled()).toBe(true);

    // Once what is typed is valid, the broker counts what it would destroy, announced politely.
    await retention().getByLabel('Retention (days)').fill('365');
    await retention().getByLabel('Measured from').selectOption('closed_at');
    const count = retention().locator('p.retention-count');
    await count
      .getByText(
        '3 of 10 records would be destroyed at the next daily run (now none would be: no retention is set). 1 record without a closed_at would be kept.',
      )
      .waitFor();
    expect(await count.getAttribute('aria-live')).toBe('polite');
    expect(await preview(365, 'closed_at')).toEqual({ destroyed: 3, destroyedByCurrent: 0, records: 10 });
    // Days that are no number are not counted: the count goes.
    await retention().getByLabel('Retention (days)').fill('36x');
    await page.waitForFunction(`!document.querySelector('p.retention-count').textContent`);

    // Setting retention destroys records at the next run: asked first, with the days and the count;
    // Cancel sends nothing.
    await saveRetention('365', 'closed_at');
    await confirmation().getByText('Set retention to 365 days?').waitFor();
    await confirmation()
      .getByText(
        '3 of 10 records would be destroyed at the next daily run (now none would be: no retention is set).',
      )
      .waitFor();
    expect(await confirmation().textContent()).toContain('is more than 365 days old is destroyed');
    // Said once: in the question, not beside it as well.
    expect(await count.textContent()).toBe('');
    expect(await axeViolations(page)).toEqual([]);
    await h.screenshot(page, '40-retention-confirm');
    // The question has the focus, so it is read out; answered, the focus returns to the form.
    expect(await page.evaluate<string>(`document.activeElement?.id ?? ''`)).toBe('retention-confirm');
    await confirmation().getByRole('button', { name: 'Cancel' }).click();
    expect(await page.evaluate<string | null>(`document.activeElement?.getAttribute('inputmode')`)).toBe(
      'numeric',
    );
    expect(updates).toEqual([]);
    expect(await retentionOf()).toEqual({ retentionDays: null, retentionField: null });

    await retention().getByRole('button', { name: 'Save retention' }).click();
    await confirmation().getByRole('button', { name: 'Yes, destroy records older than 365 days' }).click();
    await saved('Retention saved: records whose closed_at is more than 365 days old');
    expect(await retentionOf()).toEqual({ retentionDays: 365, retentionField: 'closed_at' });
    await page.getByText('365 days after closed_at: older records are destroyed daily').waitFor();
    const [event] = await h.broker.query<{ action: string; decision: string; reason: string }>(
      `SELECT action, decision, reason FROM audit_event WHERE dataset_id = $1 ORDER BY seq DESC LIMIT 1`,
      [datasetId],
    );
    expect(event).toEqual({
      action: 'DATASET_UPDATED',
      decision: 'ALLOW',
      reason: 'retention 365 days by closed_at',
    });
    await h.screenshot(page, '41-retention-set');

    // Keeping records longer asks nothing.
    await saveRetention('400', 'closed_at');
    await saved('more than 400 days old');
    expect(await retentionOf()).toEqual({ retentionDays: 400, retentionField: 'closed_at' });

    // Shortening asks, saying from how many days to how many, and how many records would go.
    await saveRetention('30', 'closed_at');
    await confirmation().getByText('Shorten retention from 400 days to 30 days?').waitFor();
    await confirmation()
      .getByText('7 of 10 records would be destroyed at the next daily run (now 3 would be).')
      .waitFor();
    expect(await preview(30, 'closed_at')).toEqual({ destroyed: 7, destroyedByCurrent: 3, records: 10 });
    await h.screenshot(page, '41b-retention-shorten-count');
    await confirmation().getByRole('button', { name: 'Yes, destroy records older than 30 days' }).click();
    await saved('more than 30 days old');
    expect(await retentionOf()).toEqual({ retentionDays: 30, retentionField: 'closed_at' });

    // Another field may reach records sooner: asked too.
    await saveRetention('30', 'opened_on');
    await confirmation()
      .getByText('Measure retention from opened_on instead of closed_at, 30 days?')
      .waitFor();
    await confirmation()
      .getByText('7 of 10 records would be destroyed at the next daily run (now 7 would be).')
      .waitFor();
    await confirmation().getByRole('button', { name: 'Yes, destroy records older than 30 days' }).click();
    await saved('records whose opened_on is more than 30 days old');
    expect(await retentionOf()).toEqual({ retentionDays: 30, retentionField: 'opened_on' });

    // Clearing both removes retention (retentionDays 0 in the API): nothing is destroyed, nothing asked.
    await retention().getByLabel('Retention (days)').fill('');
    await retention().getByLabel('Measured from').selectOption('');
    await count
      .getByText('No record would be destroyed at the next daily run; all 10 records kept (now 7 would be).')
      .waitFor();
    await saveRetention('', '');
    await saved('Retention removed: records are kept.');
    expect(await retentionOf()).toEqual({ retentionDays: null, retentionField: null });
    expect(await fact('Retention').textContent()).toBe('not set: records are kept');
    expect(updates.map((u) => (JSON.parse(u) as { variables: { input: unknown } }).variables.input)).toEqual([
      { retentionDays: 365, retentionField: 'closed_at' },
      { retentionDays: 400, retentionField: 'closed_at' },
      { retentionDays: 30, retentionField: 'closed_at' },
      { retentionDays: 30, retentionField: 'opened_on' },
      { retentionDays: 0, retentionField: null },
    ]);

    // Back to 90 days by opened_on, for the tests that follow.
    await saveRetention('90', 'opened_on');
    await confirmation().getByRole('button', { name: 'Yes, destroy records older than 90 days' }).click();
    await saved('more than 90 days old');
    expect(await retentionOf()).toEqual({ retentionDays: 90, retentionField: 'opened_on' });
  });

  it('renames the dataset and rewrites its description', async () => {
    const form = section('Title and description');
    await form.getByLabel('Title').fill('Probation cases (kept 90 days)');
    await form.getByLabel('Description (optional)').fill('Open and closed supervision cases.');
    await form.getByRole('button', { name: 'Save title and description' }).click();
    await form.getByRole('status').filter({ hasText: 'Title and description saved.' }).waitFor();
    await page.getByRole('heading', { level: 1, name: 'Probation cases (kept 90 days)' }).waitFor();
    expect(await fact('Description').textContent()).toBe('Open and closed supervision cases.');
    expect(await stored()).toEqual({
      title: 'Probation cases (kept 90 days)',
      description: 'Open and closed supervision cases.',
      retentionDays: 90,
      retentionField: 'opened_on',
    });
  });

  it('refuses an invalid retention with the form’s or the broker’s message, and changes nothing', async () => {
    const before = await stored();
    const sent = updates.length;
    const alert = () => retention().getByRole('alert');

    // Checked in the page as the broker checks it: nothing is sent.
    await saveRetention('thirty', 'opened_on');
    expect(await alert().textContent()).toBe(
      'The retention was not changedThe retention is invalid: retentionDays must be an integer from 1 to 36500',
    );
    const days = retention().getByLabel('Retention (days)');
    expect(await days.getAttribute('aria-invalid')).toBe('true');
    expect(await days.getAttribute('aria-describedby')).toMatch(/-problem/);
    expect(await axeViolations(page)).toEqual([]);
    await h.screenshot(page, '42-retention-invalid');

    await saveRetention('30', '');
    await alert()
      .getByText(
        'The retention is invalid: retentionField is required with retentionDays: a DATE or DATETIME field',
      )
      .waitFor();
    expect(await retention().getByLabel('Measured from').getAttribute('aria-invalid')).toBe('true');
    expect(updates.length).toBe(sent);

    // A field that is no date gets past no form of this page, but the broker checks it all the same:
    // its refusal is shown word for word, and nothing changes.
    await page.route('**/graphql', async (route) => {
      const body = route.request().postDataJSON();
      if (typeof body?.query === 'string' && body.query.includes('updateDataset'))
        body.variables.input.retentionField = 'officer';
      await route.continue({ postData: JSON.stringify(body) });
    });
    try {
      await saveRetention('45', 'opened_on');
      await confirmation().getByRole('button', { name: 'Yes, destroy records older than 45 days' }).click();
      await alert()
        .getByText('The retention is invalid: retentionField must be a DATE or DATETIME field')
        .waitFor();
    } finally {
      await page.unroute('**/graphql');
    }
    expect(await retention().getByLabel('Measured from').getAttribute('aria-invalid')).toBe('true');
    expect(await retention().getByRole('status').count()).toBe(0);
    expect(updates.length).toBe(sent + 1);
    expect(await stored()).toEqual(before);
    await page.getByText('90 days after opened_on: older records are destroyed daily').waitFor();
    // Audited as every refusal is.
    const [refusal] = await h.broker.query<{ decision: string; reason: string; operations: string[] }>(
      `SELECT decision, reason, details->'operations' AS operations FROM audit_event ORDER BY seq DESC LIMIT 1`,
    );
    expect(refusal).toEqual({
      decision: 'DENY',
      reason: 'INVALID',
      operations: ['updateDataset'],
    });
    await h.screenshot(page, '43-retention-refused-by-broker');

    // A count the broker refuses is said with its message word for word, and stops nothing.
    await page.route('**/graphql', async (route) => {
      const body = route.request().postDataJSON();
      if (typeof body?.query === 'string' && body.query.includes('retentionPreview'))
        body.variables.retentionField = 'officer';
      await route.continue({ postData: JSON.stringify(body) });
    });
    try {
      await retention().getByLabel('Retention (days)').fill('50');
      await retention().getByLabel('Measured from').selectOption('opened_on');
      await retention()
        .locator('p.retention-count')
        .getByText(
          'The records could not be counted: The retention is invalid: retentionField must be a DATE or DATETIME field',
        )
        .waitFor();
    } finally {
      await page.unroute('**/graphql');
    }
    expect(await retention().getByRole('button', { name: 'Save retention' }).isDisabled()).toBe(false);
    await retention().getByLabel('Retention (days)').fill('90');
    expect(await stored()).toEqual(before);

    // The broker's refusal of a title, word for word too.
    const form = section('Title and description');
    await form.getByLabel('Title').fill('   ');
    await form.getByRole('button', { name: 'Save title and description' }).click();
    await form.getByRole('alert').getByText('title must be 1 to 200 characters').waitFor();
    expect(await stored()).toEqual(before);
  });

  it('shows retention read-only to a steward of another agency, and the page to no other role', async () => {
    await signIn(page, otherStewardKey);
    await page.goto(`/admin/datasets/${datasetId}`);
    await page.getByRole('heading', { level: 1, name: 'Probation cases (kept 90 days)' }).waitFor();
    expect(await fact('Retention').textContent()).toBe(
      '90 days after opened_on: older records are destroyed daily',
    );
    for (const name of ['Retention', 'Title and description', 'Upload records'])
      expect(await section(name).count()).toBe(0);
    expect(
      await page
        .getByRole('button')
        .filter({ hasText: /retention|title/i })
        .count(),
    ).toBe(0);
    await h.screenshot(page, '44-retention-read-only');

    for (const key of [analystKey, auditorKey]) {
      await signIn(page, key);
      await page.goto(`/admin/datasets/${datasetId}`);
      await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
      expect(await page.getByLabel('Retention (days)').count()).toBe(0);
    }

    // The broker refuses them all the same; nothing changed.
    const update = (key: string) =>
      h.broker.gql(
        key,
        `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { id } }`,
        { id: datasetId, input: { retentionDays: 1, retentionField: 'opened_on' } },
      );
    expect((await update(analystKey)).errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect((await update(auditorKey)).errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect((await update(otherStewardKey)).errors?.[0].extensions?.code).toBe('NOT_FOUND');
    expect(await retentionOf()).toEqual({ retentionDays: 90, retentionField: 'opened_on' });
  });
  it('counts again when records change: after an upload on the page, and when it asks first', async () => {
    const intake = await h.broker.registerDataset(stewardKey, {
      slug: 'probation_intake',
      title: 'Probation intake',
      keyField: 'intake_id',
      fields: [
        { name: 'intake_id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'received_on', type: 'DATE', classification: 'NON_SENSITIVE' },
      ],
    });
    const old = new Date(Date.now() - 900 * 86_400_000).toISOString().slice(0, 10);
    const recent = new Date(Date.now() - 3 * 86_400_000).toISOString().slice(0, 10);
    await h.broker.gqlOk(
      stewardKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: intake.id,
        r: [
          { intake_id: 'I1', received_on: old },
          { intake_id: 'I2', received_on: recent },
        ],
      },
    );
    await signIn(page, stewardKey);
    await page.goto(`/admin/datasets/${intake.id}`);
    await page.getByRole('heading', { level: 1, name: 'Probation intake' }).waitFor();
    await retention().getByLabel('Retention (days)').fill('365');
    await retention().getByLabel('Measured from').selectOption('received_on');
    const count = retention().locator('p.retention-count');
    const counted = (text: string) =>
      page.waitForFunction(
        `document.querySelector('p.retention-count')?.textContent === ${JSON.stringify(
          `${text} at the next daily run (now none would be: no retention is set).`,
        )}`,
      );
    await counted('1 of 2 records would be destroyed');

    // The steward uploads old records on the same page: the count counts them.
    const upload = section('Upload records');
    await upload.getByLabel('CSV file').setInputFiles({
      name: 'intake.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(['intake_id,received_on', `I3,${old}`, `I4,${old}`].join('\n')),
    });
    await upload.getByRole('button', { name: 'Upload records' }).click();
    await upload.getByRole('status').filter({ hasText: '2 records inserted' }).waitFor();
    await counted('3 of 4 records would be destroyed');
    expect(await count.textContent()).toContain('3 of 4');

    // Records ingested elsewhere meanwhile: the question, asked now, counts them too.
    await h.broker.gqlOk(
      stewardKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: intake.id, r: [{ intake_id: 'I5', received_on: old }] },
    );
    await retention().getByRole('button', { name: 'Save retention' }).click();
    await confirmation().getByText('Set retention to 365 days?').waitFor();
    await confirmation()
      .getByText(
        '4 of 5 records would be destroyed at the next daily run (now none would be: no retention is set).',
      )
      .waitFor();
    await confirmation().getByRole('button', { name: 'Cancel' }).click();
  });

  it('registers a dataset with its retention, refusing days that are no number before anything is sent', async () => {
    await signIn(page, stewardKey);
    await page.goto('/admin/datasets/new');
    await page.getByRole('heading', { level: 1, name: 'Register a dataset' }).waitFor();
    await page.getByLabel('Slug').fill('probation_visits');
    await page.getByLabel('Title', { exact: true }).fill('Probation visits');
    const fields: [string, string][] = [
      ['visit_id', 'STRING'],
      ['officer', 'STRING'],
      ['visited_on', 'DATE'],
    ];
    for (const [i, [name, type]] of fields.entries()) {
      if (i > 0) await page.getByRole('button', { name: 'Add a field' }).click();
      const group = page.getByRole('group', { name: `Field ${i + 1}` });
      await group.getByLabel('Name').fill(name);
      await group.getByLabel('Type').selectOption(type);
    }
    await page.getByLabel('Key field').selectOption('visit_id');
    const form = page.getByRole('group', { name: 'Retention (optional)' });
    // Only the DATE field is offered to measure from.
    expect(await form.getByLabel('Measured from').locator('option').allTextContents()).toEqual([
      'None',
      'visited_on',
    ]);
    const registered = async () =>
      (await h.broker.query(`SELECT 1 FROM dataset WHERE slug = 'probation_visits'`)).length;
    const days = form.getByLabel('Retention (days)');
    await days.fill('thirty');
    await form.getByLabel('Measured from').selectOption('visited_on');
    await page.getByRole('button', { name: 'Register dataset' }).click();
    await form.getByText('must be an integer from 1 to 36500').waitFor();
    expect(await days.getAttribute('aria-invalid')).toBe('true');
    expect(await registered()).toBe(0);

    await days.fill('400');
    await page.getByRole('button', { name: 'Register dataset' }).click();
    await page.getByRole('heading', { level: 1, name: /^Probation visits/ }).waitFor();
    expect(
      await h.broker.query(
        `SELECT retention_days, retention_field FROM dataset WHERE slug = 'probation_visits'`,
      ),
    ).toEqual([{ retention_days: 400, retention_field: 'visited_on' }]);
    expect(await fact('Retention').textContent()).toBe(
      '400 days after visited_on: older records are destroyed daily',
    );
  });
});
