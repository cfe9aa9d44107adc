import { type FormEvent, useState } from 'react';
import { type Agency, type Purpose, ROLES, type Role, type User, Q } from '../api/schema';
import {
  EmptyState,
  ErrorMessage,
  Field,
  Loading,
  Notice,
  PageHeader,
  TableWrap,
  problemsAt,
} from '../components/ui';
import { formatDay, humanize } from '../lib/format';
import { useMutation, useQuery } from '../lib/use-query';

/** The agencies of the county, and onboarding a new one. */
export function AgenciesPage() {
  const { data, error, loading, reload } = useQuery<{ agencies: Agency[] }>(Q.agencies);
  const create = useMutation<{ createAgency: Agency }>(Q.createAgency);
  const [name, setName] = useState('');
  const [kind, setKind] = useState('');
  const [created, setCreated] = useState<Agency | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setCreated(null);
    const result = await create.mutate({ input: { name: name.trim(), kind: kind.trim() || null } });
    if (result) {
      setCreated(result.createAgency);
      setName('');
      setKind('');
      await reload();
    }
  };
  const agencies = data?.agencies ?? [];
  return (
    <>
      <PageHeader title="Agencies" />
      <section className="card" aria-labelledby="new-agency">
        <h2 id="new-agency">Onboard an agency</h2>
        <form onSubmit={(e) => void submit(e)} className="stack">
          <div className="grid-2">
            <Field label="Name" problem={problemsAt(create.error, 'name')}>
              {(a) => <input {...a} value={name} onChange={(e) => setName(e.target.value)} required />}
            </Field>
            <Field label="Kind (optional)" hint="For example law_enforcement, court, cbo, research.">
              {(a) => <input {...a} value={kind} onChange={(e) => setKind(e.target.value)} />}
            </Field>
          </div>
          <ErrorMessage error={create.error} title="The agency was not created" />
          {created ? (
            <Notice>Agency “{created.name}” created. Create its steward on the Users page.</Notice>
          ) : null}
          <div className="form-actions">
            <button type="submit" className="primary" disabled={create.busy || !name.trim()}>
              Create agency
            </button>
          </div>
        </form>
      </section>
      <section aria-labelledby="agency-list">
        <h2 id="agency-list">All agencies</h2>
        <ErrorMessage error={error} />
        {loading && !data ? <Loading /> : null}
        {data && agencies.length === 0 ? (
          <EmptyState>No agencies yet — onboard the first one above.</EmptyState>
        ) : null}
        {agencies.length ? (
          <TableWrap label="Agencies">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {agencies.map((a) => (
                  <tr key={a.id}>
                    <td>{a.name}</td>
                    <td>{a.kind ?? '—'}</td>
                    <td>{formatDay(a.createdAt)}</td>
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

const AGENCY_ROLES: Role[] = ['STEWARD', 'ANALYST'];

/**
 * Creates users and shows each new API key once: the broker stores only its hash, so a key that is
 * lost is replaced by creating a new user.
 */
export function UsersPage() {
  const agencies = useQuery<{ agencies: Agency[] }>(Q.agencies);
  const users = useQuery<{ users: User[] }>(Q.users);
  const deactivate = useMutation<{ deactivateUser: { id: string; active: boolean } }>(Q.deactivateUser);
  const create = useMutation<{ createUser: { user: User; apiKey: string } }>(Q.createUser);
  const [email, setEmail] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [role, setRole] = useState<Role>('STEWARD');
  const [agencyId, setAgencyId] = useState('');
  const [created, setCreated] = useState<{ user: User; apiKey: string }[]>([]);
  const [copied, setCopied] = useState<string | null>(null);
  const needsAgency = AGENCY_ROLES.includes(role);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const result = await create.mutate({
      input: {
        email: email.trim(),
        displayName: displayName.trim() || null,
        role,
        agencyId: role === 'OPERATOR' ? null : agencyId || null,
      },
    });
    if (result) {
      setCreated((list) => [result.createUser, ...list]);
      setEmail('');
      setDisplayName('');
      void users.reload();
    }
  };
  const deactivateUser = async (user: User) => {
    if (!window.confirm(`Deactivate ${user.email}? Its key stops working on its next request.`)) return;
    if (await deactivate.mutate({ id: user.id })) void users.reload();
  };
  const copy = async (key: string) => {
    try {
      await navigator.clipboard.writeText(key);
      setCopied(key);
    } catch {
      setCopied(null);
    }
  };

  return (
    <>
      <PageHeader title="Users" />
      <section className="card" aria-labelledby="new-user">
        <h2 id="new-user">Create a user</h2>
        <p className="muted">
          The operator invites operators, auditors (of an agency of kind oversight) and the first steward of
          an agency that has none; that steward creates its agency’s analysts and further stewards. A key the
          operator creates is an invitation: its owner rotates it before it does anything else.
        </p>
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
                  {ROLES.map((r) => (
                    <option key={r} value={r}>
                      {humanize(r)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field
              label="Agency"
              hint={
                needsAgency
                  ? 'Required for this role.'
                  : role === 'OPERATOR'
                    ? 'Operators belong to no agency.'
                    : 'Optional.'
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
      <section aria-labelledby="user-list">
        <h2 id="user-list">Users</h2>
        <ErrorMessage error={users.error ?? deactivate.error} />
        {users.data && users.data.users.length > 0 ? (
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
                  <td>{u.email}</td>
                  <td>{humanize(u.role)}</td>
                  <td>{u.agency?.name ?? '—'}</td>
                  <td>
                    {!u.active
                      ? 'Deactivated'
                      : u.invitationPending
                        ? 'Invited (key not rotated yet)'
                        : 'Active'}
                  </td>
                  <td>
                    {u.active ? (
                      <button type="button" disabled={deactivate.busy} onClick={() => void deactivateUser(u)}>
                        Deactivate<span className="visually-hidden"> {u.email}</span>
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <EmptyState>No users to show.</EmptyState>
        )}
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
                </p>
                <Field
                  label={`API key of ${user.email}`}
                  hint="Shown once: it cannot be displayed again after you leave this page."
                >
                  {(a) => (
                    <input
                      {...a}
                      readOnly
                      value={apiKey}
                      className="mono"
                      onFocus={(e) => e.target.select()}
                    />
                  )}
                </Field>
                <button type="button" onClick={() => void copy(apiKey)}>
                  {copied === apiKey ? 'Copied' : 'Copy key'}
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}

/** The purposes data may be used for, and defining a new one. */
export function PurposesPage() {
  const { data, error, loading, reload } = useQuery<{ purposes: Purpose[] }>(Q.purposes);
  const define = useMutation<{ definePurpose: Purpose }>(Q.definePurpose);
  const [code, setCode] = useState('');
  const [description, setDescription] = useState('');
  const [created, setCreated] = useState<Purpose | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setCreated(null);
    const result = await define.mutate({ input: { code: code.trim(), description: description.trim() } });
    if (result) {
      setCreated(result.definePurpose);
      setCode('');
      setDescription('');
      await reload();
    }
  };
  const purposes = data?.purposes ?? [];
  return (
    <>
      <PageHeader title="Purposes" />
      <section className="card" aria-labelledby="new-purpose">
        <h2 id="new-purpose">Define a purpose</h2>
        <form onSubmit={(e) => void submit(e)} className="stack">
          <div className="grid-2">
            <Field
              label="Code"
              hint="Capital letters, digits and _, e.g. RECIDIVISM_EVALUATION. It cannot change later."
            >
              {(a) => (
                <input {...a} value={code} onChange={(e) => setCode(e.target.value.toUpperCase())} required />
              )}
            </Field>
            <Field label="Description">
              {(a) => (
                <input {...a} value={description} onChange={(e) => setDescription(e.target.value)} required />
              )}
            </Field>
          </div>
          <ErrorMessage error={define.error} title="The purpose was not defined" />
          {created ? <Notice>Purpose {created.code} defined.</Notice> : null}
          <div className="form-actions">
            <button
              type="submit"
              className="primary"
              disabled={define.busy || !code.trim() || !description.trim()}
            >
              Define purpose
            </button>
          </div>
        </form>
      </section>
      <section aria-labelledby="purpose-list">
        <h2 id="purpose-list">Defined purposes</h2>
        <ErrorMessage error={error} />
        {loading && !data ? <Loading /> : null}
        {data && purposes.length === 0 ? (
          <EmptyState>No purposes yet — define the first one above.</EmptyState>
        ) : null}
        {purposes.length ? (
          <TableWrap label="Purposes">
            <table>
              <thead>
                <tr>
                  <th scope="col">Code</th>
                  <th scope="col">Description</th>
                  <th scope="col">Defined</th>
                </tr>
              </thead>
              <tbody>
                {purposes.map((p) => (
                  <tr key={p.id}>
                    <td>
                      <code>{p.code}</code>
                    </td>
                    <td>{p.description}</td>
                    <td>{formatDay(p.createdAt)}</td>
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
