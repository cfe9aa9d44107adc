import { getQueueToken } from '@nestjs/bullmq';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Queue } from 'bullmq';
import type { Page } from 'playwright-core';
import { createLogger } from '@broker/core';
import { QueueName } from '@broker/jobs';
import { WorkerModule } from '../apps/worker/src/worker.module';
import { type AdminHarness, signIn, startAdminHarness } from './admin-browser';

/**
 * The operator's and the analyst's pages in a real browser: onboarding an agency, its steward (whose
 * key is shown once) and a purpose, and a linkage run followed live to its match-weight histogram,
 * executed by a worker running in this process. Screenshots land in test-output/admin/.
 */
describe('admin UI for operators and analysts (browser)', () => {
  let h: AdminHarness;
  let page: Page;
  let worker: INestApplicationContext | null = null;
  const LINKAGE_ENV = {
    LINKAGE_CHUNK_RECORDS: '10',
    LINKAGE_PARTITIONS: '2',
    LINKAGE_RANDOM_PAIRS: '1000',
    LINKAGE_UNIT_PAUSE_MS: '400',
  };

  beforeAll(async () => {
    h = await startAdminHarness('admin_operator');
    ({ page } = await h.newPage());
  }, 180_000); // the first file of a run builds the admin UI and GraphiQL

  afterAll(async () => {
    await worker?.close();
    for (const name of Object.keys(LINKAGE_ENV)) delete process.env[name];
    await h?.close();
  });

  it('onboards an agency, a purpose and a steward whose key is shown once', async () => {
    await signIn(page, h.broker.operatorKey);
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Agencies',
      'Users',
      'Purposes',
      'Agreements',
      'Linkage',
    ]);
    // Every agreement, read-only (DESIGN: agreements are listed to OPERATOR and AUDITOR too).
    await nav.getByRole('link', { name: 'Agreements' }).click();
    await page.getByText('Read-only: agreements are negotiated and approved by the stewards').waitFor();
    await page.getByText('No agreements yet.').waitFor();
    expect(await page.getByRole('link', { name: 'Propose an agreement' }).count()).toBe(0);
    await nav.getByRole('link', { name: 'Agencies' }).click();
    await page.getByText('No agencies yet — onboard the first one above.').waitFor();
    await page.getByLabel('Name').fill('County Sheriff');
    await page.getByLabel('Kind (optional)').fill('law_enforcement');
    await page.getByRole('button', { name: 'Create agency' }).click();
    await page.getByRole('status').filter({ hasText: 'Agency “County Sheriff” created' }).waitFor();
    await page
      .getByRole('region', { name: 'Agencies' })
      .getByRole('cell', { name: 'County Sheriff' })
      .waitFor();

    await nav.getByRole('link', { name: 'Purposes' }).click();
    await page.getByLabel('Code').fill('x1');
    await page.getByLabel('Description').fill('Too short a code');
    await page.getByRole('button', { name: 'Define purpose' }).click();
    await page.getByRole('alert').filter({ hasText: 'code must match' }).waitFor();
    await page.getByLabel('Code').fill('recidivism_evaluation');
    expect(await page.getByLabel('Code').inputValue()).toBe('RECIDIVISM_EVALUATION');
    await page.getByLabel('Description').fill('Evaluate re-offending after release');
    await page.getByRole('button', { name: 'Define purpose' }).click();
    await page.getByRole('status').filter({ hasText: 'Purpose RECIDIVISM_EVALUATION defined' }).waitFor();
    await h.screenshot(page, '20-operator-purposes');

    await nav.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Email').fill('steward@sheriff.example');
    await page.getByLabel('Role').selectOption('STEWARD');
    expect(await page.getByRole('button', { name: 'Create user' }).isDisabled()).toBe(true); // no agency yet
    await page.getByLabel('Agency', { exact: true }).selectOption({ label: 'County Sheriff' });
    await page.getByRole('button', { name: 'Create user' }).click();
    const key = page.getByLabel('API key of steward@sheriff.example');
    await key.waitFor();
    const apiKey = await key.inputValue();
    await h.screenshot(page, '21-operator-key-shown-once');
    // The key shown is the new steward's.
    const me = await h.broker.gqlOk<{ me: { email: string; role: string; agency: { name: string } } }>(
      apiKey,
      `{ me { email role agency { name } } }`,
    );
    expect(me.me).toEqual({
      email: 'steward@sheriff.example',
      role: 'STEWARD',
      agency: { name: 'County Sheriff' },
    });
    // Shown once: after leaving the page it is gone.
    await nav.getByRole('link', { name: 'Agencies' }).click();
    await nav.getByRole('link', { name: 'Users' }).click();
    await page.getByText('No user created yet in this session.').waitFor();
    expect(await page.getByText(apiKey).count()).toBe(0);
  });

  it('starts a linkage run and follows its progress to the match-weight histogram', async () => {
    const sheriff = await h.broker.createAgency('Sheriff records');
    const courts = await h.broker.createAgency('Superior Court');
    const surnames = ['Garcia', 'Johnson', 'Nguyen', 'Okafor', 'Patel', 'Kowalski', 'Schmidt', 'Rossi'];
    const given = ['Maria', 'James', 'Linh', 'Chidi', 'Priya', 'Tomasz', 'Greta', 'Marco', 'Ana', 'Devon'];
    const people = Array.from({ length: 30 }, (_, i) => ({
      first: given[i % given.length],
      last: surnames[(i * 3) % surnames.length],
      dob: `${1950 + i}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + ((i * 7) % 28)).padStart(2, '0')}`,
    }));
    for (const [agency, slug, prefix] of [
      [sheriff, 'sheriff_bookings', 'B'],
      [courts, 'court_cases', 'C'],
    ] as const) {
      const steward = await h.broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
      const dataset = await h.broker.registerDataset(steward.apiKey, {
        slug,
        title: slug,
        keyField: 'id',
        fields: [
          { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'first_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'FIRST_NAME' },
          { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
          { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
        ],
      });
      const csv = [
        'id,first_name,last_name,dob',
        ...people.map((p, i) => `${prefix}${i},${p.first},${p.last},${p.dob}`),
      ];
      expect((await h.broker.upload(steward.apiKey, dataset.id, 'text/csv', csv.join('\n'))).status).toBe(
        200,
      );
    }
    // The uploads scheduled a run of their own; this test starts its own from the page.
    await h.broker.app.get<Queue>(getQueueToken(QueueName.LINKAGE)).obliterate({ force: true });

    // A worker in this process, slowed down per unit of work so that the progress can be watched.
    Object.assign(process.env, LINKAGE_ENV);
    worker = await NestFactory.createApplicationContext(
      WorkerModule.forRoot(h.broker.config, createLogger('silent')),
      {
        logger: false,
      },
    );
    await worker.init();

    await signIn(page, h.broker.operatorKey);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Linkage' }).click();
    await page.getByRole('heading', { level: 1, name: 'Record linkage' }).waitFor();
    await page.getByRole('button', { name: 'Start a linkage run' }).click();
    await page.getByRole('heading', { level: 1, name: /^Linkage run / }).waitFor();
    const progress = page.getByLabel('Linkage progress');
    await progress.waitFor();
    // Followed live: the page shows the run under way before it shows it done.
    const status = page.getByRole('status').filter({ hasText: /^(Queued|Running|Succeeded|Failed)/ });
    expect(await status.textContent()).toMatch(/^(Queued|Running): \d+% done\.$/);
    await h.screenshot(page, '22-linkage-running');
    // The bar moves as the page polls the run, never backwards, until the run is done.
    const seen: number[] = [];
    const done = page.getByRole('status').filter({ hasText: /^Succeeded\.$/ });
    const deadline = Date.now() + 60_000;
    while (!(await done.count())) {
      if (Date.now() > deadline) throw new Error(`the run did not finish; progress seen: ${seen.join(', ')}`);
      const value = Number(await progress.getAttribute('value'));
      if (seen[seen.length - 1] !== value) seen.push(value);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await progress.getAttribute('value')).toBe('100');
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.some((v) => v > 0 && v < 100)).toBe(true);
    const histogram = page.getByRole('img', { name: /Candidate pairs by match weight/ });
    await histogram.waitFor();
    expect(await histogram.locator('rect').count()).toBeGreaterThan(0);
    expect(await histogram.locator('text', { hasText: /^threshold / }).count()).toBe(1);
    const links = await page
      .locator('dl.facts dt', { hasText: /^Links$/ })
      .locator('xpath=following-sibling::dd[1]')
      .textContent();
    expect(Number(links)).toBeGreaterThanOrEqual(25);
    // The weights the run learned, one bar per level of every comparison, and the same as a table.
    const weights = page.getByRole('img', { name: /Learned match weights per comparison level/ });
    await weights.waitFor();
    expect(await weights.locator('rect').count()).toBe(34);
    const table = page.getByRole('region', { name: 'Learned weights' });
    expect(await table.locator('tbody tr').count()).toBe(34);
    expect(await table.locator('tbody tr').first().locator('td').nth(1).textContent()).toBe('exact');
    // The pairs nearest the threshold, as levels and weights (the few records here may have none).
    await page.getByRole('heading', { level: 2, name: 'Pairs near the threshold' }).waitFor();
    await page
      .getByRole('region', { name: 'Uncertain pairs' })
      .or(page.getByText('No pair was near the threshold.'))
      .waitFor();
    await h.screenshot(page, '23-linkage-done');

    // A run retention sent back to its estimate phase says so; one never sent back says nothing.
    const restarts = page.locator('dl.facts dt', { hasText: /^Restarts$/ });
    expect(await restarts.count()).toBe(0);
    await h.broker.query(`UPDATE linkage_run SET restarts = 2`);
    await page.reload();
    await page.getByRole('heading', { level: 1, name: /^Linkage run / }).waitFor();
    await restarts.waitFor();
    expect(await restarts.locator('xpath=following-sibling::dd[1]').textContent()).toBe(
      '2 times: retention destroyed records the run had learned from, so it learned its model again without them.',
    );

    await page.getByRole('link', { name: 'All linkage runs' }).click();
    await page.getByRole('region', { name: 'Linkage runs' }).getByText('Succeeded').waitFor();
  });

  it('shows an analyst how to query the data plane and what its agreements in force release', async () => {
    const cbo = await h.broker.createAgency('Second Chance');
    const research = await h.broker.createAgency('Research Office');
    const cboSteward = await h.broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    const researchSteward = await h.broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    const analyst = await h.broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    const dataset = await h.broker.registerDataset(cboSteward.apiKey, {
      slug: 'reentry_participation',
      title: 'Re-entry participation',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER' },
        { name: 'program', type: 'STRING', classification: 'SENSITIVE' },
      ],
    });
    await h.broker.activateAgreement(cboSteward.apiKey, researchSteward.apiKey, {
      title: 'Programs for evaluation',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        { datasetId: dataset.id, fields: [{ name: 'program' }, { name: 'dob', transform: 'GENERALIZE' }] },
      ],
    });
    await signIn(page, analyst.apiKey);
    await page.getByRole('heading', { level: 1, name: 'Querying data' }).waitFor();
    const agreement = page.getByRole('article').filter({ hasText: 'Programs for evaluation' });
    await agreement.getByText('dob_year').waitFor();
    expect(await agreement.locator('code.tag').allTextContents()).toEqual(['dob_year', 'program']);
    expect(await page.getByLabel('Example request').textContent()).toContain(
      'reentry_participation(purpose: RECIDIVISM_EVALUATION',
    );
    await h.screenshot(page, '24-analyst');
    // The linked count builder needs two datasets granted with linkage: this agency has one without.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Linked count' }).click();
    await page.getByRole('heading', { level: 1, name: 'Linked count' }).waitFor();
    await page.getByText('A linked count needs two datasets granted to your agency with linkage.').waitFor();
  });
});
