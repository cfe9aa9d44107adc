import type { Locator, Page } from 'playwright-core';
import { type AdminHarness, axeViolations, startAdminHarness } from './admin-browser';

/**
 * GraphiQL at the GraphQL endpoints, in a real browser: a browser's GET of `/data/graphql` or
 * `/graphql` is the page (bundled from npm, under a strict CSP), which asks for an API key and
 * sends it as `Authorization: Bearer`; API clients see the endpoints unchanged.
 */
describe('GraphiQL (browser)', () => {
  let h: AdminHarness;
  let analyst: { apiKey: string; email: string };
  let steward: { apiKey: string };
  let agreementId: string;
  let page: Page;

  beforeAll(async () => {
    h = await startAdminHarness('graphiql');
    const cbo = await h.broker.createAgency('Second Chance Re-entry', 'cbo');
    const research = await h.broker.createAgency('County Research Office', 'research');
    steward = await h.broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    const researchSteward = await h.broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    analyst = await h.broker.createUser({
      agencyId: research.id,
      role: 'ANALYST',
      email: 'analyst@research.example',
    });
    await h.broker.definePurposes('RECIDIVISM_EVALUATION');
    const dataset = await h.broker.registerDataset(steward.apiKey, {
      slug: 'reentry_participation',
      title: 'Re-entry participation',
      keyField: 'enrollment_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        {
          name: 'dob',
          type: 'DATE',
          classification: 'QUASI_IDENTIFIER',
          identity: 'DATE_OF_BIRTH',
          description: 'Date of birth as the participant gave it at intake',
        },
        { name: 'program', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    await h.broker.gqlOk(
      steward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: dataset.id,
        r: [
          { enrollment_id: 'E1', dob: '1981-04-02', program: 'Employment Readiness' },
          { enrollment_id: 'E2', dob: '1990-11-30', program: 'Peer Mentoring' },
        ],
      },
    );
    agreementId = await h.broker.activateAgreement(steward.apiKey, researchSteward.apiKey, {
      title: 'Re-entry outcomes',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: [{ name: 'program' }, { name: 'dob', transform: 'GENERALIZE' }],
        },
      ],
    });
    ({ page } = await h.newPage());
  }, 120_000);

  afterAll(() => h?.close());

  // Functions, not strings: the page's CSP refuses eval, so a string would not run there.
  /** The value of the CodeMirror 5 editor inside `selector`. */
  const editorValue = (selector: string) =>
    page.evaluate(
      (s) =>
        ((globalThis as any).document.querySelector(`${s} .CodeMirror`)?.CodeMirror.getValue() ??
          '') as string,
      selector,
    );
  /** Waits until the response editor shows `text`. */
  const responseShows = (text: string) =>
    page.waitForFunction(
      (t) =>
        (
          (globalThis as any).document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue() ??
          ''
        ).includes(t) as boolean,
      text,
    );
  /** Whether `locator` takes the focus (effects run just after a render, so it is awaited). */
  const isFocused = async (locator: Locator) => {
    const focused = () =>
      locator.evaluate(
        (el: unknown) =>
          el === (globalThis as { document?: { activeElement?: unknown } }).document?.activeElement,
      );
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await page.waitForTimeout(25)) {
      if (await focused()) return true;
    }
    return false;
  };
  /** What has the focus: its role (or tag) and its name. */
  const focused = () =>
    page.evaluate(() => {
      const el = (globalThis as any).document.activeElement;
      const role = (el.getAttribute('role') ?? el.tagName.toLowerCase()) as string;
      return `${role}: ${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim()}`;
    });
  /** The text of the element that describes `locator` (its aria-describedby). */
  const hintOf = async (locator: Locator) => {
    const id = await locator.getAttribute('aria-describedby');
    return (await page.locator(`[id="${id}"]`).innerText()).replace(/\s+/g, ' ');
  };
  /** The text of the elements that describe `locator`: its aria-describedby, each id resolved. */
  const descriptionOf = async (locator: Locator) => {
    const ids = (await locator.getAttribute('aria-describedby'))?.split(/\s+/) ?? [];
    expect(ids.length).toBeGreaterThan(0);
    const texts: string[] = [];
    for (const id of ids) {
      const described = page.locator(`[id="${id}"]`);
      expect(await described.count()).toBe(1);
      texts.push((await described.innerText()).replace(/\s+/g, ' ').trim());
    }
    return texts.join(' ');
  };
  /** The description chromium gives a screen reader for the first element matching `selector`. */
  const computedDescription = async (selector: string) => {
    const cdp = await page.context().newCDPSession(page);
    try {
      const { root } = await cdp.send('DOM.getDocument', { depth: 0 });
      const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector });
      const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
      return (nodes[0]?.description?.value as string | undefined)?.replace(/\s+/g, ' ');
    } finally {
      await cdp.detach();
    }
  };
  /** Puts `value` into the editor inside `selector`, focuses it and puts the cursor at `line`, `ch`. */
  const editAt = (selector: string, value: string, line: number, ch: number) =>
    page.evaluate(
      ([s, v, l, c]) => {
        const editor = (globalThis as any).document.querySelector(`${s} .CodeMirror`).CodeMirror;
        editor.setValue(v);
        editor.focus();
        editor.setCursor({ line: l, ch: c });
      },
      [selector, value, line, ch] as const,
    );
  /** Puts `query` into the query editor. */
  const typeQuery = (query: string) =>
    page.evaluate((q) => {
      (globalThis as any).document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q);
    }, query);

  it('serves the page to a browser on both endpoints, under a strict CSP', async () => {
    for (const path of ['/data/graphql', '/graphql']) {
      const response = await fetch(`${h.baseUrl}${path}`, { headers: { accept: 'text/html,*/*;q=0.8' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(response.headers.get('vary')).toBe('accept');
      const html = await response.text();
      expect(html).toContain('<div id="root"></div>');
      // Every script comes from the broker itself, none inline.
      const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
      expect(scripts.length).toBeGreaterThan(0);
      for (const tag of scripts) expect(tag).toMatch(/ src="\/admin\/assets\/[\w.-]+\.js"/);
      expect(html).not.toMatch(/<script\b[^>]*>[^<]+<\/script>/);

      const csp = response.headers.get('content-security-policy')!;
      const directives = new Map(
        csp.split(';').map((d) => {
          const [name, ...sources] = d.trim().split(/\s+/);
          return [name, sources] as const;
        }),
      );
      expect(directives.get('default-src')).toEqual(["'none'"]);
      expect(directives.get('script-src')).toEqual(["'self'"]);
      expect(directives.get('connect-src')).toEqual(["'self'"]);
      // The one inline style GraphiQL adds is allowed by a nonce of this response, never another's.
      const [self, nonce] = directives.get('style-src')!;
      expect(self).toBe("'self'");
      expect(nonce).toMatch(/^'nonce-[A-Za-z0-9+/]{24}'$/);
      expect(html).toContain(`<meta name="csp-nonce" content="${nonce.slice(7, -1)}" />`);
      expect(directives.get('style-src')).toHaveLength(2);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
      expect(csp).not.toContain('__CSP_NONCE__');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('leaves both endpoints unchanged for API clients', async () => {
    // GraphQL over GET stays refused: queries do not belong in URLs.
    for (const path of ['/data/graphql', '/graphql']) {
      const response = await fetch(`${h.baseUrl}${path}?query=%7B__typename%7D`, {
        headers: { accept: 'application/json', authorization: `Bearer ${analyst.apiKey}` },
      });
      expect(response.status).toBe(405);
      expect(await response.json()).toMatchObject({
        data: null,
        errors: [{ extensions: { code: 'BAD_USER_INPUT' } }],
      });
    }
    const rows = await h.broker.gql(
      analyst.apiKey,
      `{ reentry_participation(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: dob_year }]) { nodes { dob_year program } } }`,
      undefined,
      '/data/graphql',
    );
    expect(rows).toEqual({
      status: 200,
      data: {
        reentry_participation: {
          nodes: [
            { dob_year: 1981, program: 'Employment Readiness' },
            { dob_year: 1990, program: 'Peer Mentoring' },
          ],
        },
      },
    });
    const me = await h.broker.gql(analyst.apiKey, '{ me { email role } }');
    expect(me).toEqual({ status: 200, data: { me: { email: 'analyst@research.example', role: 'ANALYST' } } });
    // Without a key, both still answer 401 in GraphQL's shape.
    const anonymous = await h.broker.gql(null, '{ me { email } }', undefined, '/data/graphql');
    expect(anonymous.status).toBe(401);
    expect(anonymous.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('signs in with an API key, runs a query and shows what each released name is', async () => {
    await page.goto('/data/graphql');
    const key = page.getByLabel('API key');
    // The admin UI's sign-in form: the key field has the focus and is described by where the key is kept.
    await key.waitFor();
    expect(await isFocused(key)).toBe(true);
    expect(await key.getAttribute('type')).toBe('password');
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(
      'GraphiQL · Data plane /data/graphql',
    );
    expect(await hintOf(key)).toMatch(
      /^Requests carry it as Authorization: Bearer\. It stays in this browser tab only/,
    );
    await key.fill('dsb_not_a_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'That API key is not valid' }).waitFor();
    expect(await key.getAttribute('aria-invalid')).toBe('true');
    expect(await isFocused(key)).toBe(true);

    await key.fill(analyst.apiKey);
    await key.press('Enter');
    await page.getByText('Signed in as analyst@research.example (ANALYST)').waitFor();
    expect(
      await page.evaluate<string | null>(`window.sessionStorage.getItem('broker.graphiql.apiKey')`),
    ).toBe(analyst.apiKey);
    expect(await page.evaluate<string[]>('Object.keys(window.localStorage)')).toEqual([]);

    // Requests carry the key as a bearer token.
    const sent = page.waitForRequest((r) => r.url().endsWith('/data/graphql') && r.method() === 'POST');
    await page.waitForSelector('.graphiql-query-editor .CodeMirror');
    await typeQuery(
      '{ reentry_participation(purpose: RECIDIVISM_EVALUATION, orderBy: [{ field: dob_year }]) { nodes { dob_year program } } }',
    );
    await page.getByRole('button', { name: /Execute query/ }).click();
    expect((await sent).headers().authorization).toBe(`Bearer ${analyst.apiKey}`);
    await responseShows('Peer Mentoring');
    expect(JSON.parse(await editorValue('.result-window'))).toEqual({
      data: {
        reentry_participation: {
          nodes: [
            { dob_year: 1981, program: 'Employment Readiness' },
            { dob_year: 1990, program: 'Peer Mentoring' },
          ],
        },
      },
    });
    await h.screenshot(page, 'graphiql-01-query');

    // The documentation explorer: the dataset's record type describes each released name.
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const docs = page.locator('.graphiql-doc-explorer');
    await docs.getByRole('link', { name: 'Query' }).click();
    await docs.getByRole('link', { name: 'reentry_participation', exact: true }).first().click();
    await docs
      .getByText(`released to your agency by the agreements in force: agreement ${agreementId} v1`)
      .waitFor();
    await docs.getByRole('link', { name: 'ReentryParticipationConnection' }).first().click();
    await docs.getByRole('link', { name: 'ReentryParticipation', exact: true }).first().click();
    // A type's page shows the first paragraph of each field's description; the field's own page all of it.
    const summary = (await docs.innerText()).replace(/\s+/g, ' ');
    expect(summary).toContain(
      'dob_year: Int From field dob (DATE) of reentry_participation, released as GENERALIZE: its year.',
    );
    await docs.getByRole('link', { name: 'dob_year', exact: true }).click();
    await docs.getByText('Date of birth as the participant gave it at intake').waitFor();
    const text = (await docs.innerText()).replace(/\s+/g, ' ');
    expect(text).toContain(
      'From field dob (DATE) of reentry_participation, released as GENERALIZE: its year.',
    );
    expect(text).toContain(
      'The provider describes the field: Date of birth as the participant gave it at intake',
    );
    expect(text).toContain(
      `Released to your agency by: agreement ${agreementId} v1 (ROWS; RECIDIVISM_EVALUATION).`,
    );
    await h.screenshot(page, 'graphiql-02-docs');
  });

  it('has no axe-core violation: editors labelled and described, tabs, the documentation explorer, dialogs', async () => {
    // A page of its own: axe-core's script needs the CSP that the other tests check bypassed.
    const { context, page: checked } = await h.newPage(1280, { axe: true });
    try {
      await checked.goto('/data/graphql');
      await checked.getByLabel('API key').fill(analyst.apiKey);
      await checked.getByRole('button', { name: 'Sign in' }).click();
      // Signed in, the editor ready and a query of this test's in it, as the other tests do: the
      // default query and the schema may not be in yet when the page first shows its button.
      await checked.getByText('Signed in as analyst@research.example (ANALYST)').waitFor();
      await checked.waitForSelector('.graphiql-query-editor .CodeMirror');
      await checked.evaluate((q) => {
        (globalThis as any).document
          .querySelector('.graphiql-query-editor .CodeMirror')
          .CodeMirror.setValue(q);
      }, '{ reentry_participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }');
      await checked.getByRole('button', { name: /Execute query/ }).click();
      await checked.waitForFunction(
        () =>
          (
            (globalThis as any).document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue() ??
            ''
          ).includes('reentry_participation') as boolean,
        undefined,
        { timeout: 30_000 },
      );
      await checked.getByRole('textbox', { name: 'Query' }).waitFor();
      await checked.getByRole('button', { name: 'Show editor tools' }).click();
      await checked.getByRole('textbox', { name: 'Variables (JSON)' }).waitFor();
      await checked.getByRole('textbox', { name: 'Response' }).waitFor();
      // The keyboard help above the editors is on the page that axe-core checks.
      expect(await checked.locator('.gq-keys').isVisible()).toBe(true);
      // The editable text is inside the editor's scroll area (CodeMirror's contenteditable input),
      // so the part that scrolls is reached by keyboard: a query wider than the editor scrolls.
      expect(
        await checked.evaluate(() => {
          const input = (globalThis as any).document.querySelector(
            '.graphiql-query-editor .CodeMirror-scroll [contenteditable="true"]',
          );
          return input?.getAttribute('aria-label') as string | undefined;
        }),
      ).toBe('Query');
      // No violation at all, moderate and minor ones included: with one tab, with two (each with
      // its close button) and with the documentation explorer open (the root types, a field).
      expect(await axeViolations(checked)).toEqual([]);
      await checked.getByRole('button', { name: 'New tab' }).click();
      await checked.locator('.graphiql-tab-close').first().waitFor({ state: 'attached' });
      expect(await checked.getByRole('tab').count()).toBe(2);
      await checked.getByRole('button', { name: 'Show Documentation Explorer' }).click();
      const docs = checked.locator('.graphiql-doc-explorer');
      await docs.getByRole('link', { name: 'Query' }).click();
      expect(await axeViolations(checked)).toEqual([]);
      await docs.getByRole('link', { name: 'reentry_participation', exact: true }).first().click();
      await docs.getByText('released to your agency by the agreements in force', { exact: false }).waitFor();
      expect(await axeViolations(checked)).toEqual([]);
      for (const dialog of ['Open settings dialog', 'Open short keys dialog']) {
        await checked.getByRole('button', { name: dialog }).click();
        await checked.getByRole('dialog').waitFor();
        expect(await axeViolations(checked)).toEqual([]);
        await checked.keyboard.press('Escape');
        await checked.getByRole('dialog').waitFor({ state: 'detached' });
      }
    } finally {
      await context.close();
    }
  });

  it('is used by keyboard alone: Tab leaves each editor, and a tab closes with Delete', async () => {
    await page.goto('/data/graphql');
    await page.getByText('Signed in as analyst@research.example (ANALYST)').waitFor();
    await page.waitForSelector('.graphiql-query-editor .CodeMirror');
    await typeQuery('');
    /** Presses Tab until `name` has the focus, and says which controls it passed on the way. */
    const tabTo = async (name: string) => {
      const passed: string[] = [];
      for (let i = 0; i < 40 && (await focused()) !== name; i++) {
        passed.push(await focused());
        await page.keyboard.press('Tab');
      }
      expect(await focused()).toBe(name);
      return passed;
    };

    // From the page's bar to the query editor, then a query typed there and Tab out of it to run it.
    await page.getByRole('button', { name: 'Sign out' }).focus();
    const passed = await tabTo('textbox: Query');
    expect(passed).toEqual(
      expect.arrayContaining(['button: Show Documentation Explorer', 'tab: <untitled>']),
    );
    await page.keyboard.type('{ __typename ');
    expect(await editorValue('.graphiql-query-editor')).toBe('{ __typename }');
    // Tab does not indent: Ctrl+] and Ctrl+[ do.
    await page.keyboard.press('Control+]');
    expect(await editorValue('.graphiql-query-editor')).toBe('  { __typename }');
    await page.keyboard.press('Control+[');
    expect(await editorValue('.graphiql-query-editor')).toBe('{ __typename }');
    await page.keyboard.press('Shift+Tab');
    expect(await focused()).not.toBe('textbox: Query');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('textbox: Query');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('button: Execute query (Ctrl-Enter)');
    await page.keyboard.press('Enter');
    await responseShows('Query');
    expect(JSON.parse(await editorValue('.result-window'))).toEqual({ data: { __typename: 'Query' } });
    // On to the response, whose text the keyboard reads (and cannot change): the variables are
    // passed over while the editor tools are closed (their pane is off screen), reached when open.
    expect(await tabTo('textbox: Response')).not.toContain('textbox: Variables (JSON)');
    await page.getByRole('button', { name: 'Show editor tools' }).focus();
    await page.keyboard.press('Enter');
    expect(await tabTo('textbox: Response')).toContain('textbox: Variables (JSON)');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('x');
    expect(JSON.parse(await editorValue('.result-window'))).toEqual({ data: { __typename: 'Query' } });
    await page.keyboard.press('Tab');
    expect(await focused()).not.toBe('textbox: Response');

    // A second tab: the tabs are buttons of role tab, the close button the pointer's only; Delete
    // closes the focused tab and the focus stays on the tabs.
    await page.getByRole('button', { name: 'New tab' }).focus();
    await page.keyboard.press('Enter');
    const tabs = page.getByRole('tablist', { name: 'Select active operation' }).getByRole('tab');
    await page.locator('.graphiql-tab-close').first().waitFor({ state: 'attached' });
    expect(await tabs.count()).toBe(2);
    expect([
      await tabs.first().getAttribute('aria-selected'),
      await tabs.last().getAttribute('aria-selected'),
    ]).toEqual(['false', 'true']);
    expect(await tabs.first().getAttribute('aria-keyshortcuts')).toBe('Delete');
    expect(await hintOf(tabs.first())).toBe('Delete closes the tab.');
    expect(await page.getByRole('button', { name: 'Close Tab' }).count()).toBe(0);
    await tabs.last().focus();
    await page.keyboard.press('ArrowLeft');
    expect(await isFocused(tabs.first())).toBe(true);
    await h.screenshot(page, 'graphiql-03-keyboard-tabs');
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      () =>
        (globalThis as any).document.querySelector('.graphiql-tab-active')?.matches(':first-child') === true,
    );
    expect(await editorValue('.graphiql-query-editor')).toBe('{ __typename }');
    await page.keyboard.press('Delete');
    await page.waitForFunction(() => !(globalThis as any).document.querySelector('.graphiql-tab-close'));
    expect(await tabs.count()).toBe(1);
    expect(await isFocused(tabs.first())).toBe(true);
    expect(await tabs.first().getAttribute('aria-selected')).toBe('true');
    expect(await tabs.first().getAttribute('aria-keyshortcuts')).toBeNull();
    // The tab left is the new one, empty: the closed tab's query went with it.
    expect(await editorValue('.graphiql-query-editor')).not.toContain('__typename');
  });

  /** The keyboard help, as the page shows it and as it describes the editors (Linux: Ctrl). */
  const KEYS_MOVE = 'Tab and Shift+Tab move to the next or previous control.';
  const KEYS_EDIT =
    'Ctrl+] indents, Ctrl+[ outdents, Ctrl+Space completes, Ctrl+Enter runs the query, Shift+Ctrl+P prettifies.';

  it('tells keyboard users how the editors behave, on the page and in each editor, and the keys do it', async () => {
    await page.goto('/data/graphql');
    await page.getByText('Signed in as analyst@research.example (ANALYST)').waitFor();
    await page.waitForSelector('.graphiql-query-editor .CodeMirror');
    const show = page.getByRole('button', { name: 'Show editor tools' });
    if ((await show.count()) > 0) await show.click();
    await page.getByRole('textbox', { name: 'Variables (JSON)' }).waitFor();

    // Shown above the editors, in the window as it opens.
    const help = page.locator('.gq-keys');
    expect(await help.isVisible()).toBe(true);
    expect((await help.innerText()).replace(/\s+/g, ' ').trim()).toBe(
      `Editor keys: ${KEYS_MOVE} ${KEYS_EDIT}`,
    );
    const shown = (await help.boundingBox())!;
    const editor = (await page.locator('.graphiql-query-editor').boundingBox())!;
    expect(shown.y).toBeGreaterThanOrEqual(0);
    expect(shown.y + shown.height).toBeLessThanOrEqual(editor.y);
    await h.screenshot(page, 'graphiql-04-keyboard-help');

    // Each editor's text box is described by it: the response, read only, by how to leave it.
    const expected: [name: string, description: string][] = [
      ['Query', `${KEYS_MOVE} ${KEYS_EDIT}`],
      ['Variables (JSON)', `${KEYS_MOVE} ${KEYS_EDIT}`],
      ['Response', KEYS_MOVE],
    ];
    const describedAsExpected = async () => {
      for (const [name, description] of expected) {
        const box = page.getByRole('textbox', { name, exact: true });
        expect(await box.getAttribute('contenteditable')).toBe('true');
        expect(await descriptionOf(box)).toBe(description);
      }
      // As chromium tells a screen reader.
      expect(await computedDescription('.graphiql-query-editor [contenteditable="true"]')).toBe(
        `${KEYS_MOVE} ${KEYS_EDIT}`,
      );
      expect(await computedDescription('.result-window [contenteditable="true"]')).toBe(KEYS_MOVE);
    };
    await describedAsExpected();

    // A new tab's editors too, and every editor on the page is described.
    const tabs = page.getByRole('tablist', { name: 'Select active operation' }).getByRole('tab');
    const before = await tabs.count();
    await page.getByRole('button', { name: 'New tab' }).click();
    await page.locator('.graphiql-tab-close').first().waitFor({ state: 'attached' });
    expect(await tabs.count()).toBe(before + 1);
    expect(await tabs.last().getAttribute('aria-selected')).toBe('true');
    await describedAsExpected();
    expect(
      await page.evaluate(() =>
        [...(globalThis as any).document.querySelectorAll('.CodeMirror [contenteditable="true"]')].map(
          (input: any) => `${input.getAttribute('aria-label')}: ${input.getAttribute('aria-describedby')}`,
        ),
      ),
    ).toEqual([
      'Query: gq-keys-move gq-keys-edit',
      'Variables (JSON): gq-keys-move gq-keys-edit',
      'Response: gq-keys-move',
    ]);

    // The keys do what the help says, in the new tab's query editor. Ctrl+] and Ctrl+[ indent and
    // outdent the line of the cursor, and only that line.
    const query = page.getByRole('textbox', { name: 'Query', exact: true });
    await editAt('.graphiql-query-editor', 'query {\n  __typename\n}', 1, 4);
    expect(await isFocused(query)).toBe(true);
    await page.keyboard.press('Control+]');
    expect(await editorValue('.graphiql-query-editor')).toBe('query {\n    __typename\n}');
    await page.keyboard.press('Control+[');
    await page.keyboard.press('Control+[');
    expect(await editorValue('.graphiql-query-editor')).toBe('query {\n__typename\n}');
    // Ctrl+Space lists the schema's completions at the cursor; Enter takes the one chosen.
    await editAt('.graphiql-query-editor', '{ __typen }', 0, 9);
    await page.keyboard.press('Control+Space');
    const hints = page.locator('.CodeMirror-hints .CodeMirror-hint');
    await hints.first().waitFor();
    expect(await hints.allInnerTexts()).toEqual(['__type', '__typename']);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    expect(await editorValue('.graphiql-query-editor')).toBe('{ __typename }');
    expect(await hints.count()).toBe(0);
    // Shift+Ctrl+P prettifies.
    await editAt('.graphiql-query-editor', '{__typename}', 0, 1);
    await page.keyboard.press('Shift+Control+P');
    expect(await editorValue('.graphiql-query-editor')).toBe('{\n  __typename\n}');
    // Ctrl+Enter runs the query (the response emptied first, so the answer is this run's).
    await editAt('.result-window', '', 0, 0);
    await editAt('.graphiql-query-editor', '{ __typename }', 0, 2);
    await page.keyboard.press('Control+Enter');
    await responseShows('Query');
    expect(JSON.parse(await editorValue('.result-window'))).toEqual({ data: { __typename: 'Query' } });
    // Tab and Shift+Tab move to the next and previous control, the text unchanged.
    await editAt('.graphiql-query-editor', '{ __typename }', 0, 2);
    await page.keyboard.press('Tab');
    expect(await isFocused(page.getByRole('button', { name: 'Execute query (Ctrl-Enter)' }))).toBe(true);
    await page.keyboard.press('Shift+Tab');
    expect(await isFocused(query)).toBe(true);
    await page.keyboard.press('Shift+Tab');
    expect(await focused()).toBe('a: GraphiQL');
    expect(await editorValue('.graphiql-query-editor')).toBe('{ __typename }');

    // And in the variables editor: indenting, prettifying, running the query, leaving by Tab.
    const variables = page.getByRole('textbox', { name: 'Variables (JSON)' });
    await editAt('.graphiql-editor-tool', '{\n"limit": 1\n}', 1, 0);
    expect(await isFocused(variables)).toBe(true);
    await page.keyboard.press('Control+]');
    expect(await editorValue('.graphiql-editor-tool')).toBe('{\n  "limit": 1\n}');
    await page.keyboard.press('Control+[');
    expect(await editorValue('.graphiql-editor-tool')).toBe('{\n"limit": 1\n}');
    await editAt('.graphiql-editor-tool', '{"limit":1}', 0, 1);
    await page.keyboard.press('Shift+Control+P');
    expect(await editorValue('.graphiql-editor-tool')).toBe('{\n  "limit": 1\n}');
    await editAt('.result-window', '', 0, 0);
    await editAt('.graphiql-editor-tool', '{}', 0, 1);
    await page.keyboard.press('Control+Enter');
    await responseShows('Query');
    expect(JSON.parse(await editorValue('.result-window'))).toEqual({ data: { __typename: 'Query' } });
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('textbox: Response');
    expect(await editorValue('.graphiql-editor-tool')).toBe('{}');

    // The response is left by Shift+Tab and Tab too (it is the page's last control).
    const response = page.getByRole('textbox', { name: 'Response' });
    expect(await isFocused(response)).toBe(true);
    await page.keyboard.press('Shift+Tab');
    expect(await focused()).toBe('textbox: Variables (JSON)');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('textbox: Response');
    await page.keyboard.press('Tab');
    expect(await focused()).not.toBe('textbox: Response');
    expect(JSON.parse(await editorValue('.result-window'))).toEqual({ data: { __typename: 'Query' } });
  });

  it('names the keys of macOS there (Cmd), which are the keys the editors answer to', async () => {
    const { context, page: mac } = await h.newPage();
    try {
      // CodeMirror takes its keys from the platform the browser reports.
      await context.addInitScript(() => {
        Object.defineProperty((globalThis as any).Navigator.prototype, 'platform', { get: () => 'MacIntel' });
      });
      await mac.goto('/data/graphql');
      await mac.getByLabel('API key').fill(analyst.apiKey);
      await mac.getByRole('button', { name: 'Sign in' }).click();
      await mac.getByText('Signed in as analyst@research.example (ANALYST)').waitFor();
      await mac.waitForSelector('.graphiql-query-editor .CodeMirror');
      const edit =
        'Cmd+] indents, Cmd+[ outdents, Ctrl+Space completes, Cmd+Enter runs the query, Shift+Ctrl+P prettifies.';
      expect((await mac.locator('.gq-keys').innerText()).replace(/\s+/g, ' ').trim()).toBe(
        `Editor keys: ${KEYS_MOVE} ${edit}`,
      );
      const value = () =>
        mac.evaluate(
          () =>
            (globalThis as any).document
              .querySelector('.graphiql-query-editor .CodeMirror')
              .CodeMirror.getValue() as string,
        );
      await mac.evaluate(() => {
        const editor = (globalThis as any).document.querySelector(
          '.graphiql-query-editor .CodeMirror',
        ).CodeMirror;
        editor.setValue('{ __typename }');
        editor.focus();
        editor.setCursor({ line: 0, ch: 2 });
      });
      await mac.keyboard.press('Meta+]');
      expect(await value()).toBe('  { __typename }');
      await mac.keyboard.press('Meta+[');
      expect(await value()).toBe('{ __typename }');
      await mac.keyboard.press('Meta+Enter');
      await mac.waitForFunction(
        () =>
          (
            (globalThis as any).document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue() ??
            ''
          ).includes('"__typename": "Query"') as boolean,
      );
    } finally {
      await context.close();
    }
  });

  it('opens the control plane at /graphql with the same session, and signs out', async () => {
    await page.goto('/graphql');
    await page.getByText('Signed in as analyst@research.example (ANALYST)').waitFor();
    await page.waitForSelector('.graphiql-query-editor .CodeMirror');
    const sent = page.waitForRequest((r) => r.url().endsWith('/graphql') && r.method() === 'POST');
    await typeQuery('{ me { role } }');
    await page.getByRole('button', { name: /Execute query/ }).click();
    expect(new URL((await sent).url()).pathname).toBe('/graphql');
    await responseShows('ANALYST');
    expect(JSON.parse(await editorValue('.result-window'))).toEqual({ data: { me: { role: 'ANALYST' } } });
    // GraphiQL's dialogs lock scrolling with a style element of their own; the CSP must not refuse
    // anything the page does (a refusal is a console error, which fails the test file).
    await page.getByRole('button', { name: 'Open settings dialog' }).click();
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    await page.getByRole('status').filter({ hasText: 'You signed out' }).waitFor();
    expect(
      await page.evaluate<string | null>(`window.sessionStorage.getItem('broker.graphiql.apiKey')`),
    ).toBeNull();
  });

  it('ends a session whose kept key stopped working with a notice, as the admin UI does', async () => {
    await page.goto('/graphql');
    await page.evaluate(`window.sessionStorage.setItem('broker.graphiql.apiKey', 'dsb_no_longer_valid')`);
    await page.reload();
    await page
      .getByRole('status')
      .filter({ hasText: 'Your session ended: the API key is no longer valid. Sign in again.' })
      .waitFor();
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(
      await page.evaluate<string | null>(`window.sessionStorage.getItem('broker.graphiql.apiKey')`),
    ).toBeNull();
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(
      'GraphiQL · Control plane /graphql',
    );
  });
});
