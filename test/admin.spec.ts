import type { Locator, Page } from 'playwright-core';
import { type AdminHarness, signIn, startAdminHarness } from './admin-browser';

/**
 * The admin UI in a real browser, as stewards and an auditor use it: sign in, register a dataset and
 * upload its records, negotiate an agreement between two agencies until it is in force, revoke it,
 * and verify the audit chain. Screenshots land in test-output/admin/.
 */
describe('admin UI (browser)', () => {
  let h: AdminHarness;
  let cbo: { id: string; name: string };
  let research: { id: string; name: string };
  let cboSteward: { apiKey: string; email: string };
  let researchSteward: { apiKey: string; email: string };
  let analyst: { apiKey: string };
  let auditor: { apiKey: string };
  let board: { apiKey: string };
  let page: Page;

  const AGREEMENT_TITLE = 'Re-entry outcomes for recidivism evaluation';

  beforeAll(async () => {
    h = await startAdminHarness('admin_ui');
    cbo = await h.broker.createAgency('Second Chance Re-entry', 'cbo');
    research = await h.broker.createAgency('County Research Office', 'research');
    cboSteward = await h.broker.createUser({
      agencyId: cbo.id,
      role: 'STEWARD',
      email: 'steward@cbo.example',
    });
    researchSteward = await h.broker.createUser({
      agencyId: research.id,
      role: 'STEWARD',
      email: 'steward@research.example',
    });
    analyst = await h.broker.createUser({
      agencyId: research.id,
      role: 'ANALYST',
      email: 'analyst@research.example',
    });
    auditor = await h.broker.createUser({ role: 'AUDITOR', email: 'oversight@county.example' });
    board = await h.broker.oversightAuditor();
    await h.broker.definePurposes('RECIDIVISM_EVALUATION', 'SUPERVISION');
    ({ page } = await h.newPage());
  }, 180_000); // the first file of a run builds the admin UI and GraphiQL

  afterAll(() => h?.close());

  it('signs in with an API key, refuses a wrong one, and signs out', async () => {
    await page.goto('/admin/');
    const key = page.getByLabel('API key');
    await expectFocused(page, key);
    await key.fill('dsb_not_a_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'That API key is not valid' }).waitFor();
    await h.screenshot(page, '01-sign-in-refused');

    // Keyboard only: type the key and press Enter.
    await key.fill(cboSteward.apiKey);
    await key.press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await page.getByText('steward@cbo.example').waitFor();
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Agreements',
      'Datasets',
      'Subject access',
      'Users',
    ]);
    // The key lives in sessionStorage only.
    expect(await page.evaluate<string[]>('Object.keys(window.localStorage)')).toEqual([]);
    expect(await page.evaluate<string>(`window.sessionStorage.getItem('broker.admin.apiKey')`)).toBe(
      cboSteward.apiKey,
    );
    await h.screenshot(page, '02-steward-home');

    await page.reload();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('status').filter({ hasText: 'You signed out' }).waitFor();
    expect(await page.evaluate<number>('window.sessionStorage.length')).toBe(0);
  });

  it('registers a dataset with the field editor, shows the broker’s refusal, and uploads its CSV', async () => {
    await signIn(page, cboSteward.apiKey);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Datasets' }).click();
    await page.getByText('No datasets yet — register one').waitFor();
    await page.getByRole('link', { name: 'Register a dataset' }).click();
    await expectFocused(page, page.getByRole('heading', { level: 1, name: 'Register a dataset' }));

    await page.getByLabel('Slug').fill('reentry_participation');
    await page.getByLabel('Title', { exact: true }).fill('Re-entry participation');
    const fields: [string, string, string, string?][] = [
      ['enrollment_id', 'STRING', 'NON_SENSITIVE'],
      ['person_id', 'STRING', 'DIRECT_IDENTIFIER'],
      ['last_name', 'STRING', 'DIRECT_IDENTIFIER', 'LAST_NAME'],
      ['dob', 'DATE', 'QUASI_IDENTIFIER', 'DATE_OF_BIRTH'],
      ['program', 'STRING', 'SENSITIVE'],
      ['completed', 'BOOLEAN', 'SENSITIVE'],
      // Refused by the broker: personKey is the linkage pseudonym's name.
      ['personKey', 'STRING', 'NON_SENSITIVE'],
    ];
    for (const [i, [name, type, classification, identity]] of fields.entries()) {
      if (i > 0) await page.getByRole('button', { name: 'Add a field' }).click();
      const group = page.getByRole('group', { name: `Field ${i + 1}` });
      await group.getByLabel('Name').fill(name);
      await group.getByLabel('Type').selectOption(type);
      await group.getByLabel('Classification').selectOption(classification);
      if (identity) await group.getByLabel('Identity role').selectOption(identity);
    }
    await page.getByLabel('Key field').selectOption('enrollment_id');
    await page.getByLabel('Subject field (optional)').selectOption('person_id');
    await page.getByRole('button', { name: 'Register dataset' }).click();
    const refusal = page.getByRole('alert').filter({ hasText: 'The dataset was not registered' });
    await refusal.getByText('personKey is reserved for linkage pseudonyms').waitFor();
    // The message is also shown at the field it concerns, which is marked invalid.
    const field7 = page.getByRole('group', { name: 'Field 7' });
    expect(await field7.getByLabel('Name').getAttribute('aria-invalid')).toBe('true');
    await h.screenshot(page, '03-dataset-refused');

    await page.getByRole('button', { name: 'Remove field 7' }).click();
    await page.getByRole('button', { name: 'Register dataset' }).click();
    await page.getByRole('heading', { level: 1, name: 'Re-entry participation' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'registered' }).waitFor();

    // A CSV with bad rows: nothing is written, every error is listed.
    const upload = page.getByRole('region', { name: 'Upload records' });
    await upload.getByLabel('CSV file').setInputFiles({
      name: 'participation-bad.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(
        [
          'enrollment_id,person_id,last_name,dob,program,completed',
          'E1,P1,Smith,1980-02-03,JOBS,true',
          'E2,P2,Jones,1975-13-45,HOUSING,false',
          'E3,P3,Brown,1990-01-01,JOBS,maybe',
        ].join('\n'),
      ),
    });
    await upload.getByRole('button', { name: 'Upload records' }).click();
    const errors = page.getByRole('alert').filter({ hasText: 'participation-bad.csv was refused' });
    await errors.waitFor();
    const rows = errors.getByRole('table', { name: /Row errors/ }).getByRole('row');
    expect(await rows.count()).toBe(3); // the header and two errors
    expect(await rows.nth(1).textContent()).toContain('dob');
    expect(await rows.nth(2).textContent()).toContain('completed');
    await h.screenshot(page, '04-upload-refused');
    expect(await h.broker.query(`SELECT 1 FROM records.reentry_participation`)).toEqual([]);

    const good = [
      'enrollment_id,person_id,last_name,dob,program,completed',
      'E1,P1,Smith,1980-02-03,JOBS,true',
      'E2,P2,Jones,1975-06-07,HOUSING,false',
      'E3,P3,Brown,1990-01-01,JOBS,',
      'E4,P4,Green,1985-05-05,DETOX,true',
      ...Array.from({ length: 2000 }, (_, i) => `X${i},Q${i},Name${i},1970-01-01,OTHER,false`),
    ].join('\n');
    await upload.getByLabel('CSV file').setInputFiles({
      name: 'participation.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(good),
    });
    await upload.getByRole('button', { name: 'Upload records' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'Uploaded participation.csv: 2,004 records inserted, 0 updated.' })
      .waitFor();
    await h.screenshot(page, '05-upload-done');
    const [{ n }] = await h.broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM records.reentry_participation`,
    );
    expect(n).toBe(2004);
  });

  it('negotiates an agreement: proposed by one steward, approved by the other until ACTIVE, amended, revoked', async () => {
    // The provider's steward proposes, watching the broker's preview as the form fills.
    await signIn(page, cboSteward.apiKey);
    await page.getByText('No agreements yet — propose one').waitFor();
    await page.getByRole('link', { name: 'Propose an agreement' }).click();
    await page.getByLabel('Title', { exact: true }).fill(AGREEMENT_TITLE);
    // The oversight board signs off but is party to no agreement: neither list offers it.
    for (const party of ['Provider', 'Recipient']) {
      const options = await page.getByLabel(party, { exact: true }).locator('option').allTextContents();
      expect([party, options.some((o) => o.startsWith('Oversight board'))]).toEqual([party, false]);
    }
    await page.getByLabel('Recipient', { exact: true }).selectOption({ label: research.name });
    await page.getByRole('checkbox', { name: /RECIDIVISM_EVALUATION/ }).check();
    await page.getByRole('checkbox', { name: /Re-entry participation/ }).check();
    const grant = page.getByRole('group', { name: 'Grant of Re-entry participation' });
    await grant.getByRole('checkbox', { name: 'Grant program' }).check();
    await grant.getByRole('checkbox', { name: 'Grant completed' }).check();
    await grant.getByRole('checkbox', { name: 'Grant dob' }).check();
    await grant.getByLabel('Transform of dob').selectOption('GENERALIZE');
    await grant.getByRole('checkbox', { name: 'Grant last_name' }).check();
    await grant.getByLabel('Transform of last_name').selectOption('HASH');
    await grant.getByRole('button', { name: 'Add a condition' }).click();
    await grant.getByLabel('Condition 1 field').selectOption('program');
    await grant.getByLabel('Condition 1 operator').selectOption('$in');
    await grant.getByLabel(/Condition 1 value/).fill('JOBS, HOUSING');
    await grant.getByText('Rows released: program in ("JOBS", "HOUSING").').waitFor();
    // Sensitive fields released as they are: the oversight board signs off, given the reasons.
    await page
      .getByLabel('Community benefit')
      .fill('The county funds the re-entry programs that keep people out of jail.');
    await grant.getByLabel('Justification of program').fill('Outcomes are compared program by program.');
    await grant.getByLabel('Justification of completed').fill('Completion is the programs’ main measure.');

    const preview = page.getByRole('complementary', { name: 'What the recipient would see' });
    const purposePreview = preview.getByRole('region', { name: 'Preview for RECIDIVISM_EVALUATION' });
    await purposePreview.getByText('Rows released now: 3').waitFor();
    // Released names as the policy engine computes them, in the order of their source fields' names.
    expect(await purposePreview.locator('tbody tr td:first-child').allTextContents()).toEqual([
      'completed',
      'dob_year',
      'last_name_hash',
      'program',
    ]);
    await h.screenshot(page, '06-propose-with-preview');
    await page.getByRole('button', { name: 'Propose agreement' }).click();
    await page.getByRole('heading', { level: 1, name: AGREEMENT_TITLE }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Version 1 proposed' }).waitFor();
    await expectFacts(page, 'Status', 'Proposed');
    await page.getByRole('button', { name: 'Sign out' }).click();

    // The recipient's steward approves: both sides approved version 1, so it is in force.
    await signIn(page, researchSteward.apiKey);
    const row = page.getByRole('row').filter({ hasText: AGREEMENT_TITLE });
    await row.getByText('Awaits your approval').waitFor();
    await row.getByRole('link', { name: AGREEMENT_TITLE }).click();
    await page
      .getByRole('region', { name: 'Preview for RECIDIVISM_EVALUATION' })
      .getByText('dob_year')
      .waitFor();
    // What it approves includes why: the community benefit and each field's justification.
    const terms = page.getByRole('region', { name: 'Terms of version 1' });
    await terms.getByText('The county funds the re-entry programs that keep people out of jail.').waitFor();
    await terms.getByText('Outcomes are compared program by program.').waitFor();
    await page.getByRole('button', { name: 'Approve version 1' }).click();
    await page.getByRole('status').filter({ hasText: 'also needs the oversight board’s approval' }).waitFor();
    await expectFacts(page, 'Status', 'Proposed');
    // Both parties approved: what is missing is the board, not the other party.
    await page
      .getByText(
        'Your agency approved version 1; so did the other party. It now awaits the oversight board’s approval.',
      )
      .waitFor();
    await expectFacts(
      page,
      'In force',
      'no version yet: both parties and the oversight board must approve one',
    );
    await page.getByRole('button', { name: 'Sign out' }).click();

    // The oversight board's auditor finds it in the queue, with the justifications beside the fields
    // and the preview of what the recipient would see, and approves: now it is in force.
    await signIn(page, board.apiKey);
    const item = page.getByRole('article', { name: new RegExp(AGREEMENT_TITLE) });
    await item.getByText('Outcomes are compared program by program.').waitFor();
    await item.getByText('The county funds the re-entry programs that keep people out of jail.').waitFor();
    await item
      .getByRole('region', { name: 'Preview for RECIDIVISM_EVALUATION' })
      .getByText('dob_year')
      .waitFor();
    await h.screenshot(page, '07-oversight-queue');
    await item.getByRole('button', { name: 'Approve version 1' }).click();
    await page.getByText(`“${AGREEMENT_TITLE}” version 1 approved: it is in force.`).waitFor();
    await page.getByText('Nothing awaits the oversight board.').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, researchSteward.apiKey);
    await page.getByRole('link', { name: AGREEMENT_TITLE }).click();
    await expectFacts(page, 'Status', 'Active');

    // An analyst of the recipient reads under it (through the data plane, not the UI).
    const read = await h.broker.gql(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program dob_year } } }`,
      undefined,
      '/data/graphql',
    );
    expect(read.errors).toBeUndefined();
    expect((read.data as any).reentry_participation.nodes).toHaveLength(3);

    // The recipient amends: without last names, at least 20 per cell. Version 1 stays in force.
    await page.getByRole('link', { name: 'Amend' }).click();
    const amendGrant = page.getByRole('group', { name: 'Grant of Re-entry participation' });
    await amendGrant.getByRole('checkbox', { name: 'Grant last_name' }).uncheck();
    await amendGrant.getByLabel('Minimum cell size').fill('20');
    await page
      .getByLabel('Community benefit')
      .fill('The county funds the programs that keep people out of jail, and closes the others.');
    await amendGrant
      .getByLabel('Justification of completed')
      .fill('Completion is what the programs are funded for.');
    await page
      .getByRole('region', { name: 'Preview for RECIDIVISM_EVALUATION' })
      .getByText('Rows released now: counted for the provider’s steward only')
      .waitFor();
    await page.getByRole('button', { name: 'Propose version 2' }).click();
    await page.getByRole('status').filter({ hasText: 'Version 2 proposed' }).waitFor();
    await expectFacts(page, 'In force', 'v1');
    const diff = page.getByRole('region', { name: 'Differences between version 1 and version 2' });
    const changed = await diff.getByRole('row').allTextContents();
    expect(changed.slice(1)).toEqual([
      expect.stringMatching(/Community benefit.*keep people out of jail\..*closes the others\./),
      expect.stringMatching(/Justification of completed.*main measure\..*funded for\./),
      expect.stringMatching(/Field last_name.*HASH.*not granted/),
      expect.stringMatching(/Minimum cell size.*11.*20/),
    ]);
    await h.screenshot(page, '08-amendment-diff');
    await page.getByRole('button', { name: 'Sign out' }).click();

    // The oversight board declines version 2 with a reason before the provider approves it, so
    // version 1 stays in force; the provider is told why, and is not asked to approve a version that
    // can no longer come into force; then it revokes the agreement with a reason.
    await signIn(page, board.apiKey);
    const second = page.getByRole('article', { name: new RegExp(AGREEMENT_TITLE) });
    await second.getByRole('button', { name: 'Decline…' }).click();
    await second.getByLabel('Reason for declining').fill('A cell size of 20 is not needed here');
    await second.getByRole('button', { name: 'Decline version 2' }).click();
    await page.getByText(`“${AGREEMENT_TITLE}” version 2 declined; the parties may amend it.`).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(page, cboSteward.apiKey);
    const declinedRow = page.getByRole('row').filter({ hasText: AGREEMENT_TITLE });
    await declinedRow.getByText('v2 declined by the oversight board').waitFor();
    expect(await declinedRow.getByText('Awaits your approval').count()).toBe(0);
    await declinedRow.getByRole('link', { name: AGREEMENT_TITLE }).click();
    await expectFacts(page, 'In force', 'v1');
    await expectFacts(page, 'Status', 'Active');
    const declined = page.getByRole('alert').filter({ hasText: 'The oversight board declined version 2' });
    await declined.getByText('A cell size of 20 is not needed here').waitFor();
    await declined.getByText('version 1 stays in force meanwhile').waitFor();
    expect(await page.getByRole('button', { name: 'Approve version 2' }).count()).toBe(0);
    await page
      .getByRole('region', { name: 'Versions and approvals' })
      .getByText(/Declined by .*A cell size of 20 is not needed here/)
      .waitFor();
    await h.screenshot(page, '09-declined-by-the-board');
    await page.getByRole('button', { name: 'Revoke…' }).click();
    const reason = page.getByLabel('Reason for revoking');
    await expectFocused(page, reason);
    await page.getByRole('button', { name: 'Revoke agreement' }).waitFor();
    expect(await page.getByRole('button', { name: 'Revoke agreement' }).isDisabled()).toBe(true);
    await reason.fill('The evaluation ended early');
    await page.getByRole('button', { name: 'Revoke agreement' }).click();
    await page.getByRole('status').filter({ hasText: 'The agreement is revoked' }).waitFor();
    await expectFacts(page, 'Status', 'Revoked');
    await expectFacts(page, 'Revoked', 'The evaluation ended early');
    await h.screenshot(page, '09-revoked');

    const after = await h.broker.gql(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`,
      undefined,
      '/data/graphql',
    );
    expect(after.data).toBeNull();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Agreements' }).click();
    await page.getByLabel('Status').selectOption('ACTIVE');
    await page.getByText('No active agreements.').waitFor();
    await page.getByLabel('Status').selectOption('REVOKED');
    await page.getByRole('link', { name: AGREEMENT_TITLE }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  it('lets an auditor read the trail, verify the chain and chart accesses per agreement', async () => {
    // Two control-plane refusals (an analyst may not start linkage), to be counted and attributed.
    for (let i = 0; i < 2; i++) {
      const refused = await h.broker.gql(analyst.apiKey, 'mutation { startLinkage { id } }');
      expect(refused.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'ROLE' });
    }
    await signIn(page, auditor.apiKey);
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Oversight queue',
      'Audit log',
      'Verification',
      'Access chart',
      'Agreements',
      'Users',
    ]);
    // An auditor starts at the oversight queue; nothing awaits it once the board decided.
    await page.getByRole('heading', { level: 1, name: 'Oversight queue' }).waitFor();
    await page.getByText('Nothing awaits the oversight board.').waitFor();
    await nav.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    const events = page.getByRole('region', { name: 'Audit events' });
    await events.getByText('Agreement revoked').waitFor();
    await page.getByLabel('Action').selectOption('QUERY');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByRole('status').filter({ hasText: 'Showing 2 events' }).waitFor();
    const queries = await events.getByRole('row').allTextContents();
    expect(queries.slice(1).every((r) => r.includes('Query'))).toBe(true);
    expect(queries[1]).toContain('Denied'); // newest first: the read after revocation
    expect(queries[2]).toContain(`${AGREEMENT_TITLE} v1`);
    // Control-plane refusals are in the log too, with who was refused and what was asked.
    await page.getByLabel('Action').selectOption('REQUEST_REFUSED');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const refusedCount = await h.broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_event WHERE action = 'REQUEST_REFUSED'`,
    );
    await page
      .getByRole('status')
      .filter({ hasText: `Showing ${refusedCount[0].n} events` })
      .waitFor();
    const linkageRefusals = events.getByRole('row').filter({ hasText: 'startLinkage' });
    expect(await linkageRefusals.count()).toBe(2);
    expect(await linkageRefusals.first().locator('td').allTextContents()).toEqual([
      expect.stringMatching(/^\d+$/),
      expect.any(String),
      'Request refused (control plane)',
      'Denied',
      'analyst@research.example',
      research.name,
      '—',
      '—',
      '—',
      'startLinkage',
      '—',
      'ROLE',
    ]);
    await h.screenshot(page, '10-audit-log');

    await nav.getByRole('link', { name: 'Verification' }).click();
    await page.getByText('Not verified yet in this session.').waitFor();
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    const verdict = page.getByRole('status').filter({ hasText: 'The chain is intact.' });
    await verdict.waitFor();
    const [{ seq }] = await h.broker.query<{ seq: number }>(`SELECT max(seq)::int AS seq FROM audit_event`);
    expect(await verdict.textContent()).toContain(`${seq} events checked`);
    // The head to write down now, as the register shows it.
    const [head] = await h.broker.query<{ seq: number; hash: string }>(
      `SELECT seq::int AS seq, hash FROM audit_head`,
    );
    await page.getByText(`${head.seq}:${head.hash}`).waitFor();
    await h.screenshot(page, '11-chain-verified');
    // Against heads written down earlier: a malformed line is refused at the field, nothing sent; the
    // head itself holds; one the log does not hold breaks the chain at its seq.
    const heads = page.getByLabel('Heads written down earlier (optional)');
    await heads.fill(`${head.seq}:${head.hash}\nnot a head`);
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await page.getByText('Line 2: write each head as its number').waitFor();
    await heads.fill(`${head.seq}:${head.hash}`);
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'the log still holds the head written down earlier' })
      .waitFor();
    await heads.fill(`${head.seq}:${'0'.repeat(64)}`);
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: `The chain is broken at event #${head.seq}.` })
      .waitFor();

    await nav.getByRole('link', { name: 'Access chart' }).click();
    const chart = page.getByRole('img', { name: /Data requests per agreement per day/ });
    await chart.waitFor();
    const accesses = page.getByRole('table', { name: /Data requests per agreement and day/ });
    // Agreements are named once their list has loaded (their ids before).
    await accesses.getByRole('row', { name: new RegExp(AGREEMENT_TITLE) }).waitFor();
    const table = await accesses.getByRole('row').allTextContents();
    expect(table.slice(1)).toEqual([expect.stringMatching(new RegExp(`${AGREEMENT_TITLE}10$`))]);
    // Refused requests of both planes, counted and attributed to whom they refused.
    await page.getByRole('img', { name: /Refused requests per day, by plane/ }).waitFor();
    const refusals = page.getByRole('table', { name: /Refused requests by day/ });
    const today = new Date().toISOString().slice(0, 10);
    // Users and agencies are named once their lists have loaded.
    const analystRow = refusals.getByRole('row').filter({ hasText: 'analyst@research.example' });
    await analystRow.first().waitFor();
    const analystCells = await analystRow.filter({ hasText: 'ROLE' }).locator('td').allTextContents();
    expect(analystCells).toEqual([
      today,
      'Control plane',
      research.name,
      'analyst@research.example',
      'ROLE',
      '2',
      '2',
    ]);
    // Every refusal in the log is in the table, the data plane's included.
    const [denied] = await h.broker.query<{ n: number; data: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE action = 'QUERY')::int AS data
         FROM audit_event WHERE decision = 'DENY'`,
    );
    const rows = refusals.locator('tbody tr');
    const cells: string[][] = [];
    for (let i = 0; i < (await rows.count()); i++)
      cells.push(await rows.nth(i).locator('td').allTextContents());
    expect(cells.reduce((sum, row) => sum + Number(row[5]), 0)).toBe(denied.n);
    expect(cells.filter((row) => row[1] === 'Data plane').reduce((sum, row) => sum + Number(row[5]), 0)).toBe(
      denied.data,
    );
    expect(denied.data).toBeGreaterThan(0);
    await h.screenshot(page, '12-access-chart');

    // Read-only agreements: no decisions to take.
    await nav.getByRole('link', { name: 'Agreements' }).click();
    await page.getByRole('link', { name: AGREEMENT_TITLE }).click();
    await page.getByRole('heading', { name: 'Versions and approvals' }).waitFor();
    expect(await page.getByRole('button', { name: /Approve|Revoke/ }).count()).toBe(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  it('works in a 400px window: navigation wraps, nothing overflows, focus is visible', async () => {
    const { context, page: narrow } = await h.newPage(400);
    await signIn(narrow, researchSteward.apiKey);
    await narrow.getByRole('link', { name: AGREEMENT_TITLE }).waitFor();
    expect(await narrow.evaluate<number>(OVERFLOW)).toBeLessThanOrEqual(0);
    // Tab from the page's heading reaches the first control, which shows a focus ring.
    await narrow.keyboard.press('Tab');
    expect(await narrow.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle')).toBe(
      'solid',
    );
    await h.screenshot(narrow, '13-narrow-agreements');
    await narrow.getByRole('link', { name: AGREEMENT_TITLE }).click();
    await narrow.getByRole('heading', { name: 'Compare versions' }).waitFor();
    expect(await narrow.evaluate<number>(OVERFLOW)).toBeLessThanOrEqual(0);
    await h.screenshot(narrow, '14-narrow-agreement');
    await context.close();
  });
});

/** How far the page is wider than the window, in pixels (the expressions run in the page). */
const OVERFLOW = 'document.documentElement.scrollWidth - window.innerWidth';

/** Waits until the element has the keyboard focus (up to 5 s). */
async function expectFocused(_page: Page, locator: Locator) {
  await locator.waitFor();
  const focused = () =>
    locator.evaluate(
      (el: unknown) =>
        el === (globalThis as { document?: { activeElement?: unknown } }).document?.activeElement,
    );
  const deadline = Date.now() + 5000;
  while (!(await focused())) {
    if (Date.now() > deadline) throw new Error(`${locator.toString()} did not receive the focus`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until the page's facts list shows `value` for `term`. */
async function expectFacts(page: Page, term: string, value: string) {
  const dd = page
    .locator('dl.facts dt', { hasText: new RegExp(`^${term}$`) })
    .locator('xpath=following-sibling::dd[1]');
  await dd.filter({ hasText: value }).waitFor();
}
