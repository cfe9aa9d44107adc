import { type FormEvent, useState } from 'react';
import { type Agency, type CreatedUser, Q, type Role, type User } from '../api/schema';
import { NewKey } from '../components/new-key';
import {
  EmptyState,
  ErrorMessage,
  Field,
  Loading,
  PageHeader,
  TableWrap,
  problemsAt,
} from '../components/ui';
import { humanize } from '../lib/format';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { useMutation, useQuery } from '../lib/use-query';

/**
 * The roles each role creates (DESIGN §4.1 "Users"): the operator invites operators, auditors and
 * an agency's first steward; a steward creates its own agency's stewards and analysts. The broker
 * decides; the form offers only what it can accept.
 */
const CREATES: Record<Role, Role[]> = {
  OPERATOR: ['STEWARD', 'AUDITOR', 'OPERATOR'],
  STEWARD: ['ANALYST', 'STEWARD'],
  AUDITOR: [],
  ANALYST: [],
};

/** Whom each role may deactivate, as far as the list knows (the broker refuses the last steward). */
function mayDeactivate(me: User, user: User): boolean {
  if (!user.active) return false;
  switch (me.role) {
    case 'OPERATOR':
      return user.role === 'OPERATOR' || user.role === 'AUDITOR';
    case 'STEWARD':
      return user.agency?.id === me.agency?.id && (user.role === 'STEWARD' || user.role === 'ANALYST');
    case 'AUDITOR':
      return user.role === 'STEWARD';
    case 'ANALYST':
      return false;
  }
}

const INTRO: Record<Role, string> = {
  OPERATOR:
    'You invite operators, auditors (of an agency of kind oversight) and the first steward of an agency that has none; that steward creates its agency’s analysts and further stewards. Every key you create is an invitation: its owner replaces it with a key of their own when first signing in, and it does nothing before.',
  STEWARD:
    'You create and deactivate your agency’s stewards and analysts. Their keys work at once: hand each one over securely. Your agency’s last active steward cannot be deactivated by the agency itself.',
  AUDITOR:
    'Every user of the broker. To recover an agency locked out of its account, deactivate its remaining stewards; the operator may then invite a first steward again.',
  ANALYST: '',
};

function status(user: User): string {
  if (!user.active) return 'Deactivated';
  return user.invitationPending ? 'Invited (key not rotated yet)' : 'Active';
}

/**
 * The users the signed-in user may see (all of them, or its agency's), whom it may create, and
 * deactivation. A new user's API key is shown once: the broker stores only its hash.
 */
export function UsersPage() {
  const { me } = useSession();
  const creatable = CREATES[me.role];
  const users = useQuery<{ users: User[] }>(Q.users);
  const deactivate = useMutation<{ deactivateUser: { id: string; active: boolean } }>(Q.deactivateUser);

  const deactivateUser = async (user: User) => {
    if (!window.confirm(`Deactivate ${user.email}? Its key stops working on its next request.`)) return;
    if (await deactivate.mutate({ id: user.id })) void users.reload();
  };

  return (
    <>
      <PageHeader title="Users" />
      <p className="muted">{INTRO[me.role]}</p>
      {creatable.length ? <CreateUser roles={creatable} onCreated={() => void users.reload()} /> : null}
      <section aria-labelledby="user-list">
        <h2 id="user-list">{me.role === 'STEWARD' && me.agency ? `Users of ${me.agency.name}` : 'Users'}</h2>
        <ErrorMessage
          error={users.error ?? deactivate.error}
          title={deactivate.error ? 'Not deactivated' : undefined}
        />
        {users.loading && !users.data ? <Loading /> : null}
        {users.data && users.data.users.length === 0 ? <EmptyState>No users to show.</EmptyState> : null}
        {users.data && users.data.users.length > 0 ? (
          <TableWrap label="User list">
            <table>
              <thead>
                <tr>
                  <th scope="col">Email</th>
                  <th scope="col">Role</th>
                  <th scope="col">Agency</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {users.data.users.map((u) => (
                  <tr key={u.id}>
                    <td>
                      {u.email}
                      {u.id === me.id ? <span className="muted"> (you)</span> : null}
                    </td>
                    <td>{humanize(u.role)}</td>
                    <td>{u.agency?.name ?? '—'}</td>
                    <td>{status(u)}</td>
                    <td>
                      {u.id === me.id ? (
                        <Link to="/account">Rotate your key</Link>
                      ) : mayDeactivate(me, u) ? (
                        <button
                          type="button"
                          disabled={deactivate.busy}
                          onClick={() => void deactivateUser(u)}
                        >
                          Deactivate<span className="visually-hidden"> {u.email}</span>
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : null}
      </section>
    </>
  );
}

/** The form that creates a user, and the keys created in this visit of the page, each shown once. */
function CreateUser({ roles, onCreated }: { roles: Role[]; onCreated: () => void }) {
  const { me } = useSession();
  const operator = me.role === 'OPERATOR';
  // Stewards create users of their own agency only: the broker takes it from the key.
  const agencies = useQuery<{ agencies: Agency[] }>(Q.agencies, undefined, !operator);
  const create = useMutation<{ createUser: CreatedUser }>(Q.createUser);
  const [email, setEmail] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [role, setRole] = useState<Role>(roles[0]);
  const [agencyId, setAgencyId] = useState('');
  const [created, setCreated] = useState<CreatedUser[]>([]);
  const needsAgency = operator && role !== 'OPERATOR';

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const result = await create.mutate({
      input: {
        email: email.trim(),
        displayName: displayName.trim() || null,
        role,
        agencyId: needsAgency ? agencyId || null : null,
      },
    });
    if (result) {
      setCreated((list) => [result.createUser, ...list]);
      setEmail('');
      setDisplayName('');
      onCreated();
    }
  };

  return (
    <>
      <section className="card" aria-labelledby="new-user">
        <h2 id="new-user">Create a user</h2>
        <form onSubmit={(e) => void submit(e)} className="stack">
          <div className="grid-2">
            <Field label="Email" problem={problemsAt(create.error, 'email')}>
              {(a) => (
                <input
                  {...a}
                  type="email"
                  value={email}
                  onChange={(e) => setEmail(e.target.value)}
                  required
                />
              )}
            </Field>
            <Field label="Display name (optional)">
              {(a) => <input {...a} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />}
            </Field>
            <Field label="Role">
              {(a) => (
                <select {...a} value={role} onChange={(e) => setRole(e.target.value as Role)}>
                  {roles.map((r) => (
                    <option key={r} value={r}>
                      {humanize(r)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            {operator ? (
              <Field
                label="Agency"
                hint={
                  role === 'OPERATOR'
                    ? 'Operators belong to no agency.'
                    : role === 'AUDITOR'
                      ? 'Required: an agency of kind oversight.'
                      : 'Required: an agency that has no active steward yet.'
                }
              >
                {(a) => (
                  <select
                    {...a}
                    value={role === 'OPERATOR' ? '' : agencyId}
                    disabled={role === 'OPERATOR'}
                    onChange={(e) => setAgencyId(e.target.value)}
                  >
                    <option value="">{needsAgency ? 'Choose an agency' : 'No agency'}</option>
                    {agencies.data?.agencies.map((ag) => (
                      <option key={ag.id} value={ag.id}>
                        {ag.name}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            ) : (
              <p className="muted">Agency: {me.agency?.name}</p>
            )}
          </div>
          <ErrorMessage
            error={create.error ?? agencies.error}
            title={create.error ? 'The user was not created' : undefined}
          />
          <div className="form-actions">
            <button
              type="submit"
              className="primary"
              disabled={create.busy || !email.trim() || (needsAgency && !agencyId)}
            >
              Create user
            </button>
          </div>
        </form>
      </section>
      <section aria-labelledby="new-keys">
        <h2 id="new-keys">Keys created in this session</h2>
        {created.length === 0 ? (
          <EmptyState>
            No user created yet in this session. Each new user’s API key is shown here once: copy it and hand
            it over securely. The broker keeps only its hash.
          </EmptyState>
        ) : (
          <ul className="plain stack">
            {created.map(({ user, apiKey }) => (
              <li key={user.id} className="card key-card">
                <p>
                  <strong>{user.email}</strong> · {humanize(user.role)}
                  {user.agency ? ` · ${user.agency.name}` : ''}
                  {operator ? ' · an invitation: its owner replaces it at first sign-in' : ''}
                </p>
                <NewKey
                  apiKey={apiKey}
                  label={`API key of ${user.email}`}
                  hint="Shown once: it cannot be displayed again after you leave this page."
                />
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
