import type { BrowserContext, Page } from 'playwright-core';
import { type AdminHarness, axeViolations, signIn, startAdminHarness } from './admin-browser';

/**
 * Users and their keys in the admin UI, in a real browser: the operator's invitation, accepted by
 * its owner at first sign-in (the key rotated, the new one shown once and copied); a steward's users
 * and deactivation; any user's rotation of its own key; what an auditor may do on the users page.
 * Each page with a key on it passes axe-core. Screenshots land in test-output/admin/.
 */
describe('admin UI: users, invitations and API keys (browser)', () => {
  let h: AdminHarness;
  let context: BrowserContext;
  let page: Page;
  let stewardKey: string;
  let stewardId: string;

  beforeAll(async () => {
    h = await startAdminHarness('admin_users');
    await h.broker.createAgency('Probation Department', 'probation');
    ({ context, page } = await h.newPage(1280, { axe: true, clipboard: true }));
  }, 180_000); // the first file of a run builds the admin UI and GraphiQL

  afterAll(() => h?.close());

  const nav = () => page.getByRole('navigation', { name: 'Main' });
  const clipboard = () => page.evaluate<string>('navigator.clipboard.readText()');
  const me = async (apiKey: string) => {
    const res = await h.broker.gql<{ me: { email: string; role: string; invitationPending: boolean } }>(
      apiKey,
      '{ me { email role invitationPending } }',
    );
    return { status: res.status, me: res.data?.me ?? null, code: res.errors?.[0]?.extensions?.code ?? null };
  };

  it('leads a user who signs in with an invitation to replace it, and shows the new key once', async () => {
    await signIn(page, h.broker.operatorKey);
    await nav().getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Email').fill('chief@probation.example');
    await page.getByLabel('Role').selectOption('STEWARD');
    await page.getByLabel('Agency', { exact: true }).selectOption({ label: 'Probation Department' });
    await page.getByRole('button', { name: 'Create user' }).click();
    const invitationField = page.getByLabel('API key of chief@probation.example');
    const invitation = await invitationField.inputValue();
    await page.getByRole('button', { name: 'Copy key' }).click();
    await page.getByRole('status').filter({ hasText: 'The key is on the clipboard.' }).waitFor();
    expect(await clipboard()).toBe(invitation);
    await page
      .getByRole('region', { name: 'User list' })
      .getByRole('row', { name: /chief@probation\.example/ })
      .getByText('Invited (key not rotated yet)')
      .waitFor();
    expect((await me(invitation)).me).toEqual({
      email: 'chief@probation.example',
      role: 'STEWARD',
      invitationPending: true,
    });

    // The owner signs in with the invitation: nothing but its acceptance is offered.
    await signIn(page, invitation);
    await page.getByRole('heading', { level: 1, name: 'Accept your invitation' }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    await page.getByText('Signed in as chief@probation.example · Steward · Probation Department.').waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await h.screenshot(page, '30-invitation');

    await page.getByRole('button', { name: 'Create my own key' }).click();
    const keyField = page.getByLabel('Your API key', { exact: true });
    stewardKey = await keyField.inputValue();
    expect(stewardKey).not.toBe(invitation);
    expect(stewardKey.length).toBeGreaterThanOrEqual(32);
    await page.getByRole('status').filter({ hasText: 'Invitation accepted' }).waitFor();
    await page.getByRole('button', { name: 'Copy key' }).click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await clipboard()).toBe(stewardKey);
    expect(await axeViolations(page)).toEqual([]);
    await h.screenshot(page, '31-invitation-accepted');

    // The invitation stopped at once; the new key is the steward's own, and this tab carries it.
    expect(await me(invitation)).toEqual({ status: 401, me: null, code: 'UNAUTHENTICATED' });
    expect((await me(stewardKey)).me).toEqual({
      email: 'chief@probation.example',
      role: 'STEWARD',
      invitationPending: false,
    });
    expect(await page.evaluate<string>(`window.sessionStorage.getItem('broker.admin.apiKey')`)).toBe(
      stewardKey,
    );
    const [rotated] = await h.broker.query<{ actor_user_id: string; n: number }>(
      `SELECT actor_user_id, count(*)::int AS n FROM audit_event WHERE action = 'API_KEY_ROTATED' GROUP BY 1`,
    );
    expect(rotated.n).toBe(1);
    stewardId = rotated.actor_user_id;

    await page.getByRole('button', { name: 'Continue to the broker' }).click();
    expect(await nav().getByRole('link').allTextContents()).toEqual([
      'Agreements',
      'Datasets',
      'Subject access',
      'Users',
    ]);
    // Shown once: a reload signs in with the new key, without the invitation page or the key.
    await page.reload();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    expect(await page.getByText('Accept your invitation').count()).toBe(0);
    expect(await page.getByText(stewardKey).count()).toBe(0);
  });

  it("lets a steward create its agency's analyst, whose key works at once, and deactivate it", async () => {
    await nav().getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { level: 2, name: 'Users of Probation Department' }).waitFor();
    expect(await page.getByLabel('Role').locator('option').allTextContents()).toEqual(['Analyst', 'Steward']);
    await page.getByLabel('Email').fill('analyst@probation.example');
    await page.getByRole('button', { name: 'Create user' }).click();
    const analystKey = await page.getByLabel('API key of analyst@probation.example').inputValue();
    // Not an invitation: it works at once.
    expect((await me(analystKey)).me).toEqual({
      email: 'analyst@probation.example',
      role: 'ANALYST',
      invitationPending: false,
    });
    const users = page.getByRole('region', { name: 'User list' });
    const analystRow = users.getByRole('row', { name: /analyst@probation\.example/ });
    await analystRow.getByText('Active').waitFor();
    const ownRow = users.getByRole('row', { name: /chief@probation\.example/ });
    expect(await ownRow.textContent()).toContain('(you)');
    expect(await ownRow.getByRole('link', { name: 'Rotate your key' }).count()).toBe(1);
    await h.screenshot(page, '32-steward-users');

    page.once('dialog', (dialog) => void dialog.accept());
    await users.getByRole('button', { name: 'Deactivate analyst@probation.example' }).click();
    await analystRow.getByText('Deactivated').waitFor();
    expect(await me(analystKey)).toEqual({ status: 401, me: null, code: 'UNAUTHENTICATED' });
    const [event] = await h.broker.query<{ actor_user_id: string }>(
      `SELECT actor_user_id FROM audit_event WHERE action = 'USER_DEACTIVATED'`,
    );
    expect(event.actor_user_id).toBe(stewardId);
  });

  it('rotates the signed-in user’s key: the old one stops, the tab carries on with the new one', async () => {
    await page.getByRole('link', { name: 'Your API key' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your API key' }).waitFor();
    // Asked first; cancelling changes nothing.
    await page.getByRole('button', { name: 'Rotate my API key' }).click();
    await page.getByText('Rotate your key now?').waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect((await me(stewardKey)).status).toBe(200);

    await page.getByRole('button', { name: 'Rotate my API key' }).click();
    await page.getByRole('button', { name: 'Yes, rotate my key' }).click();
    await page.getByRole('status').filter({ hasText: 'Your key was rotated.' }).waitFor();
    const newKey = await page.getByLabel('Your new API key').inputValue();
    expect(newKey).not.toBe(stewardKey);
    await page.getByRole('button', { name: 'Copy key' }).click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await clipboard()).toBe(newKey);
    expect(await axeViolations(page)).toEqual([]);
    await h.screenshot(page, '33-key-rotated');

    expect(await me(stewardKey)).toEqual({ status: 401, me: null, code: 'UNAUTHENTICATED' });
    expect((await me(newKey)).me?.email).toBe('chief@probation.example');
    // The tab's next requests carry the new key: the datasets page loads, with no refusal.
    await nav().getByRole('link', { name: 'Datasets' }).click();
    await page.getByRole('heading', { level: 1, name: 'Datasets' }).waitFor();
    await page
      .getByText(/No datasets/)
      .first()
      .waitFor();
    expect(await page.getByRole('alert').count()).toBe(0);
    await page.reload();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    expect(await page.evaluate<string>(`window.sessionStorage.getItem('broker.admin.apiKey')`)).toBe(newKey);
    stewardKey = newKey;
  });

  it('shows an auditor every user, with deactivation for stewards only and no user to create', async () => {
    const auditor = await h.broker.oversightAuditor();
    await signIn(page, auditor.apiKey);
    await nav().getByRole('link', { name: 'Users' }).click();
    const users = page.getByRole('region', { name: 'User list' });
    await users.getByRole('row', { name: /analyst@probation\.example/ }).waitFor();
    expect(await page.getByRole('heading', { name: 'Create a user' }).count()).toBe(0);
    const rows = await h.broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM app_user`);
    expect(await users.locator('tbody tr').count()).toBe(rows[0].n);
    // The one active steward is the only user it may deactivate.
    expect(await users.getByRole('button', { name: /^Deactivate / }).allTextContents()).toEqual([
      'Deactivate chief@probation.example',
    ]);
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });
});
