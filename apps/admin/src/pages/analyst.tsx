import { type Agreement, type Dataset, type Purpose, Q } from '../api/schema';
import { EmptyState, ErrorMessage, Loading, PageHeader } from '../components/ui';
import { describeRowFilter, formatDay, releasedName } from '../lib/format';
import { useSession } from '../lib/session';
import { useQuery } from '../lib/use-query';

/**
 * Analysts do not work in this UI: they query records through the data plane. This page says how,
 * and what their agency's agreements in force let them read.
 */
export function AnalystPage() {
  const { me } = useSession();
  const agreements = useQuery<{ agreements: Agreement[] }>(Q.agreements, { status: 'ACTIVE' });
  const datasets = useQuery<{ datasets: Dataset[] }>(Q.datasets);
  const purposes = useQuery<{ purposes: Purpose[] }>(Q.purposes);
  const received = (agreements.data?.agreements ?? []).filter((a) => a.recipient.id === me.agency?.id);
  const byId = new Map((datasets.data?.datasets ?? []).map((d) => [d.id, d]));
  const heldPurposes = new Set(received.flatMap((a) => a.purposes));
  const origin = window.location.origin;
  const example = received[0]?.versions.find((v) => v.version === received[0].inForceVersion)?.content;
  const exampleDataset = example ? byId.get(example.grants[0]?.datasetId ?? '') : undefined;
  const exampleFields = example?.grants[0]?.fields
    .map((f) => {
      const field = exampleDataset?.fields.find((x) => x.name === f.name);
      return field ? releasedName(field.name, field.type, f.transform) : null;
    })
    .filter(Boolean)
    .slice(0, 4)
    .join(' ');
  const exampleQuery =
    example && exampleDataset
      ? `{ ${exampleDataset.slug}(purpose: ${example.purposes[0]}, first: 10) { nodes { ${exampleFields} } pageInfo { hasNextPage endCursor } } }`
      : '{ __schema { queryType { fields { name } } } }';

  return (
    <>
      <PageHeader title="Querying data" />
      <p>
        Analysts read records through the data plane, <code>POST {origin}/data/graphql</code>, with their API
        key: not in this admin UI. Its schema is built for your agency from the agreements in force: it
        contains only the datasets, fields and purposes they grant, and every request names one purpose and is
        recorded in the audit log before any data is returned.
      </p>
      <pre className="code-block" tabIndex={0} aria-label="Example request">
        {`curl -s ${origin}/data/graphql \\
  -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \\
  -d '${JSON.stringify({ query: exampleQuery })}'`}
      </pre>
      <ErrorMessage error={agreements.error ?? datasets.error ?? purposes.error} />
      {agreements.loading && !agreements.data ? <Loading label="Loading your agency’s agreements…" /> : null}
      <section aria-labelledby="in-force">
        <h2 id="in-force">{me.agency?.name ?? 'Your agency'}: agreements in force</h2>
        {agreements.data && received.length === 0 ? (
          <EmptyState>
            No agreement in force gives your agency data yet, so the data plane has nothing for you. Ask your
            agency’s steward to negotiate one.
          </EmptyState>
        ) : null}
        {received.map((a) => {
          const content = a.versions.find((v) => v.version === a.inForceVersion)?.content;
          return (
            <article key={a.id} className="card">
              <h3>{a.title}</h3>
              <p className="muted">
                From {a.provider.name}, for {a.purposes.join(', ')}, until{' '}
                {formatDay(content?.validUntil ?? a.validUntil)}. Pass <code>agreement: "{a.id}"</code> when
                several agreements grant the same dataset for a purpose.
              </p>
              {content?.grants.map((g) => {
                const d = byId.get(g.datasetId);
                return (
                  <div key={g.datasetId}>
                    <h4>
                      <code>{d?.slug ?? g.datasetId}</code>
                      {g.access === 'AGGREGATE_ONLY' ? (
                        <span className="muted">
                          {' '}
                          aggregates only: {d?.slug}_aggregate, counts below {g.minCellSize} suppressed
                        </span>
                      ) : null}
                    </h4>
                    <p>
                      Fields:{' '}
                      {g.fields
                        .map((f) => {
                          const field = d?.fields.find((x) => x.name === f.name);
                          return field ? releasedName(field.name, field.type, f.transform) : f.name;
                        })
                        .concat(g.linkage ? ['personKey'] : [])
                        .map((n) => (
                          <code key={n} className="tag">
                            {n}
                          </code>
                        ))}
                    </p>
                    <p className="muted">
                      Rows: {describeRowFilter(g.rowFilter)}
                      {g.requireConsent ? '; only subjects who consented to the purpose' : ''}.
                    </p>
                  </div>
                );
              })}
            </article>
          );
        })}
      </section>
      <section aria-labelledby="purposes-heading">
        <h2 id="purposes-heading">Purposes</h2>
        {purposes.data?.purposes.length ? (
          <ul className="plain">
            {purposes.data.purposes.map((p) => (
              <li key={p.code}>
                <code>{p.code}</code> — {p.description}
                {heldPurposes.has(p.code) ? (
                  <span className="badge badge-active">granted to your agency</span>
                ) : null}
              </li>
            ))}
          </ul>
        ) : purposes.data ? (
          <EmptyState>No purposes are defined yet.</EmptyState>
        ) : null}
      </section>
    </>
  );
}
