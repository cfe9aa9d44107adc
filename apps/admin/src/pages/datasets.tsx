import type { Dataset } from '../api/schema';
import { EmptyState, ErrorMessage, Loading, PageHeader, TableWrap } from '../components/ui';
import { formatDay } from '../lib/format';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { useQuery } from '../lib/use-query';
import { Q } from '../api/schema';

/** A steward's datasets, and the catalog of every other agency's (metadata only). */
export function DatasetsPage() {
  const { me } = useSession();
  const { data, error, loading } = useQuery<{ datasets: Dataset[] }>(Q.datasets);
  const datasets = data?.datasets ?? [];
  const own = datasets.filter((d) => d.provider.id === me.agency?.id);
  const others = datasets.filter((d) => d.provider.id !== me.agency?.id);

  return (
    <>
      <PageHeader title="Datasets">
        <Link to="/datasets/new" className="button primary">
          Register a dataset
        </Link>
      </PageHeader>
      <ErrorMessage error={error} />
      {loading && !data ? <Loading label="Loading datasets…" /> : null}
      {data ? (
        <>
          <section aria-labelledby="own-datasets">
            <h2 id="own-datasets">{me.agency?.name ?? 'Your agency'}'s datasets</h2>
            {own.length === 0 ? (
              <EmptyState>
                No datasets yet — <Link to="/datasets/new">register one</Link>, then upload its records as
                CSV.
              </EmptyState>
            ) : (
              <DatasetTable datasets={own} label="Your agency's datasets" showProvider={false} />
            )}
          </section>
          <section aria-labelledby="catalog">
            <h2 id="catalog">Catalog of other agencies' datasets</h2>
            <p className="muted">
              Every signed-in user sees the catalog: names and fields, never records. Propose an agreement to
              receive some of them.
            </p>
            {others.length === 0 ? (
              <EmptyState>No other agency has registered a dataset yet.</EmptyState>
            ) : (
              <DatasetTable datasets={others} label="Catalog of other agencies' datasets" showProvider />
            )}
          </section>
        </>
      ) : null}
    </>
  );
}

function DatasetTable({
  datasets,
  label,
  showProvider,
}: {
  datasets: Dataset[];
  label: string;
  showProvider: boolean;
}) {
  return (
    <TableWrap label={label}>
      <table>
        <thead>
          <tr>
            <th scope="col">Title</th>
            <th scope="col">Slug</th>
            {showProvider ? <th scope="col">Provider</th> : null}
            <th scope="col" className="num">
              Fields
            </th>
            <th scope="col">Key field</th>
            <th scope="col">Registered</th>
          </tr>
        </thead>
        <tbody>
          {datasets.map((d) => (
            <tr key={d.id}>
              <td>
                <Link to={`/datasets/${d.id}`}>{d.title}</Link>
              </td>
              <td>
                <code>{d.slug}</code>
              </td>
              {showProvider ? <td>{d.provider.name}</td> : null}
              <td className="num">{d.fields.length}</td>
              <td>
                <code>{d.keyField}</code>
              </td>
              <td>{formatDay(d.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
