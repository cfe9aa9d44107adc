import { type FormEvent, useState } from 'react';
import { type Agency, type Purpose, Q } from '../api/schema';
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
import { formatDay } from '../lib/format';
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
