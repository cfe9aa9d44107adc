import { type FormEvent, useState } from 'react';
import { ApiError, graphql } from '../api/client';
import { type Dataset, Q } from '../api/schema';
import { EmptyState, ErrorMessage, Field, PageHeader, TableWrap } from '../components/ui';
import { formatDay } from '../lib/format';
import { useSession } from '../lib/session';
import { useQuery } from '../lib/use-query';

interface SubjectAccess {
  at: string;
  agency: { name: string };
  purpose: string;
  agreementId: string;
  agreementVersion: number;
  action: string;
  fields: string[];
}

const REPORT = `query($d: ID!, $s: String!) { subjectAccessReport(datasetId: $d, subjectId: $s) {
  at agency { name } purpose agreementId agreementVersion action fields } }`;

/**
 * A steward's subject access report: every data request that released a row of one subject of one
 * of its agency's datasets (who, when, for what purpose, under which agreement, which names).
 */
export function SubjectAccessPage() {
  const { me, apiKey } = useSession();
  const datasets = useQuery<{ datasets: Dataset[] }>(Q.datasets);
  const own = (datasets.data?.datasets ?? []).filter(
    (d) => d.provider.id === me.agency?.id && d.subjectField,
  );
  const [datasetId, setDatasetId] = useState('');
  const [subjectId, setSubjectId] = useState('');
  const [report, setReport] = useState<SubjectAccess[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const data = await graphql<{ subjectAccessReport: SubjectAccess[] }>(apiKey, REPORT, {
        d: datasetId || own[0]?.id,
        s: subjectId,
      });
      setReport(data.subjectAccessReport);
    } catch (e) {
      setReport(null);
      setError(e instanceof ApiError ? e : new ApiError(String(e), 'ERROR'));
    }
  };

  return (
    <>
      <PageHeader title="Subject access report" />
      <p>
        Every data request that returned a row of one subject, as the audit log recorded it. Aggregates
        release no rows and are not listed.
      </p>
      <ErrorMessage error={datasets.error} />
      {datasets.data && !own.length ? (
        <EmptyState>None of your agency’s datasets has a subject field.</EmptyState>
      ) : null}
      {own.length ? (
        <form onSubmit={(e) => void submit(e)} className="form">
          <Field label="Dataset">
            {(attrs) => (
              <select
                {...attrs}
                value={datasetId || own[0].id}
                onChange={(e) => setDatasetId(e.target.value)}
              >
                {own.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.title} ({d.slug})
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Subject id" hint="The value of the dataset's subject field">
            {(attrs) => (
              <input {...attrs} required value={subjectId} onChange={(e) => setSubjectId(e.target.value)} />
            )}
          </Field>
          <button type="submit">Report</button>
        </form>
      ) : null}
      <ErrorMessage error={error} title="The report was refused" />
      {report ? (
        report.length ? (
          <TableWrap label="Subject access report">
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Agency</th>
                  <th scope="col">Purpose</th>
                  <th scope="col">Agreement</th>
                  <th scope="col">Action</th>
                  <th scope="col">Released names</th>
                </tr>
              </thead>
              <tbody>
                {report.map((r, i) => (
                  <tr key={i}>
                    <td>{formatDay(r.at)}</td>
                    <td>{r.agency.name}</td>
                    <td>{r.purpose}</td>
                    <td>
                      <code>{r.agreementId}</code> v{r.agreementVersion}
                    </td>
                    <td>{r.action}</td>
                    <td>{r.fields.join(', ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : (
          <EmptyState>No request has released a row of this subject.</EmptyState>
        )
      ) : null}
    </>
  );
}
