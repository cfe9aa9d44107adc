import { type FormEvent, useRef, useState } from 'react';
import {
  CLASSIFICATIONS,
  type Classification,
  type Dataset,
  FIELD_TYPES,
  type FieldType,
  IDENTITY_ROLES,
  type IdentityRole,
  Q,
} from '../api/schema';
import { ErrorMessage, Field, PageHeader, problemsAt } from '../components/ui';
import {
  RETENTION_FIELD_TYPES,
  type RetentionProblem,
  parseRetentionDays,
  validateRetention,
} from '../lib/dataset-retention';
import { humanize } from '../lib/format';
import { Link, navigate } from '../lib/router';
import { useMutation } from '../lib/use-query';

interface FieldDraft {
  key: number;
  name: string;
  type: FieldType;
  classification: Classification;
  identity: IdentityRole | '';
  required: boolean;
  description: string;
}

let nextKey = 1;
const newField = (): FieldDraft => ({
  key: nextKey++,
  name: '',
  type: 'STRING',
  classification: 'NON_SENSITIVE',
  identity: '',
  required: false,
  description: '',
});

const SLUG = /^[a-z][a-z0-9_]{2,62}$/;

/** A select of the draft's field names, with an empty first choice (`none`). */
function NameSelect({
  attributes,
  value,
  onChange,
  names,
  none,
}: {
  attributes: Record<string, unknown>;
  value: string;
  onChange: (value: string) => void;
  names: readonly string[];
  none: string;
}) {
  return (
    <select {...attributes} value={value} onChange={(e) => onChange(e.target.value)}>
      <option value="">{none}</option>
      {names.map((n) => (
        <option key={n} value={n}>
          {n}
        </option>
      ))}
    </select>
  );
}

/** Registers a dataset of the steward's agency: its identity, and its fields one by one. */
export function DatasetFormPage() {
  const [slug, setSlug] = useState('');
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [keyField, setKeyField] = useState('');
  const [subjectField, setSubjectField] = useState('');
  const [retentionDays, setRetentionDays] = useState('');
  const [retentionField, setRetentionField] = useState('');
  const [retentionProblems, setRetentionProblems] = useState<RetentionProblem[]>([]);
  const [fields, setFields] = useState<FieldDraft[]>(() => [newField()]);
  const { mutate, error, busy } = useMutation<{ registerDataset: Dataset }>(Q.registerDataset);
  const errorRef = useRef<HTMLDivElement>(null);

  const names = fields.map((f) => f.name.trim()).filter(Boolean);
  // Retention is measured from a DATE or DATETIME field of the draft.
  const dated = fields
    .filter((f) => f.name.trim() && RETENTION_FIELD_TYPES.includes(f.type))
    .map((f) => f.name.trim());
  const update = (key: number, change: Partial<FieldDraft>) =>
    setFields((list) => list.map((f) => (f.key === key ? { ...f, ...change } : f)));
  const move = (index: number, by: number) =>
    setFields((list) => {
      const next = [...list];
      const [item] = next.splice(index, 1);
      next.splice(index + by, 0, item);
      return next;
    });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    // Days that are no whole number never reach the broker (JSON has no NaN): refused here, with the
    // broker's own messages (lib/dataset-retention.ts), and nothing is sent.
    const retention = validateRetention(
      { retentionDays: parseRetentionDays(retentionDays), retentionField: retentionField || null },
      fields.map((f) => ({ name: f.name.trim(), type: f.type })),
    );
    setRetentionProblems(retention.ok ? [] : retention.problems);
    if (!retention.ok) {
      errorRef.current?.scrollIntoView({ block: 'nearest' });
      return;
    }
    const result = await mutate({
      input: {
        slug: slug.trim(),
        title: title.trim(),
        description: description.trim() || null,
        keyField,
        subjectField: subjectField || null,
        // Both empty: records are kept until the steward sets retention.
        retentionDays: retention.retention.retentionDays,
        retentionField: retention.retention.retentionField,
        fields: fields.map((f) => ({
          name: f.name.trim(),
          type: f.type,
          classification: f.classification,
          identity: f.identity || null,
          required: f.required,
          description: f.description.trim() || null,
        })),
      },
    });
    if (result) navigate(`/datasets/${result.registerDataset.id}?registered=1`);
    else errorRef.current?.scrollIntoView({ block: 'nearest' });
  };

  return (
    <>
      <PageHeader title="Register a dataset" />
      <p className="muted">
        The dataset belongs to your agency. Its records are never shown to anyone but through agreements you
        approve. Fields cannot be changed once registered.
      </p>
      <form onSubmit={(e) => void submit(e)} className="stack" noValidate>
        <div ref={errorRef}>
          <ErrorMessage error={error} title="The dataset was not registered" />
        </div>
        <div className="grid-2">
          <Field
            label="Slug"
            hint="Lowercase letters, digits and _; it names the dataset in the data plane, e.g. jail_bookings."
            problem={
              problemsAt(error, 'slug') ??
              (slug && !SLUG.test(slug)
                ? 'Use 3 to 63 lowercase letters, digits or _, starting with a letter'
                : null)
            }
          >
            {(a) => (
              <input
                {...a}
                value={slug}
                onChange={(e) => setSlug(e.target.value)}
                autoComplete="off"
                required
              />
            )}
          </Field>
          <Field label="Title" problem={problemsAt(error, 'title')}>
            {(a) => <input {...a} value={title} onChange={(e) => setTitle(e.target.value)} required />}
          </Field>
        </div>
        <Field label="Description (optional)" problem={problemsAt(error, 'description')}>
          {(a) => (
            <textarea {...a} rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>

        <fieldset className="field-editor">
          <legend>Fields</legend>
          {problemsAt(error, 'fields') && !fields.some((_f, i) => problemsAt(error, `fields[${i}]`)) ? (
            <p className="field-problem">{problemsAt(error, 'fields')}</p>
          ) : null}
          <ol className="field-rows">
            {fields.map((f, i) => (
              <li key={f.key}>
                <fieldset className="field-row card">
                  <legend>Field {i + 1}</legend>
                  <div className="grid-3">
                    <Field label="Name" problem={problemsAt(error, `fields[${i}].name`)}>
                      {(a) => (
                        <input
                          {...a}
                          value={f.name}
                          onChange={(e) => update(f.key, { name: e.target.value })}
                          autoComplete="off"
                        />
                      )}
                    </Field>
                    <Field label="Type" problem={problemsAt(error, `fields[${i}].type`)}>
                      {(a) => (
                        <select
                          {...a}
                          value={f.type}
                          onChange={(e) => update(f.key, { type: e.target.value as FieldType })}
                        >
                          {FIELD_TYPES.map((t) => (
                            <option key={t} value={t}>
                              {t}
                            </option>
                          ))}
                        </select>
                      )}
                    </Field>
                    <Field label="Classification" problem={problemsAt(error, `fields[${i}].classification`)}>
                      {(a) => (
                        <select
                          {...a}
                          value={f.classification}
                          onChange={(e) =>
                            update(f.key, { classification: e.target.value as Classification })
                          }
                        >
                          {CLASSIFICATIONS.map((c) => (
                            <option key={c} value={c}>
                              {humanize(c)}
                            </option>
                          ))}
                        </select>
                      )}
                    </Field>
                    <Field
                      label="Identity role"
                      hint="For record linkage across agencies."
                      problem={problemsAt(error, `fields[${i}].identity`)}
                    >
                      {(a) => (
                        <select
                          {...a}
                          value={f.identity}
                          onChange={(e) => update(f.key, { identity: e.target.value as IdentityRole | '' })}
                        >
                          <option value="">None</option>
                          {IDENTITY_ROLES.map((r) => (
                            <option key={r} value={r}>
                              {humanize(r)}
                            </option>
                          ))}
                        </select>
                      )}
                    </Field>
                    <Field label="Description" problem={problemsAt(error, `fields[${i}].description`)}>
                      {(a) => (
                        <input
                          {...a}
                          value={f.description}
                          onChange={(e) => update(f.key, { description: e.target.value })}
                        />
                      )}
                    </Field>
                    <div className="field checkbox">
                      <input
                        type="checkbox"
                        id={`required-${f.key}`}
                        checked={f.required}
                        onChange={(e) => update(f.key, { required: e.target.checked })}
                      />
                      <label htmlFor={`required-${f.key}`}>Required</label>
                    </div>
                  </div>
                  <div className="row-actions">
                    <button
                      type="button"
                      onClick={() => move(i, -1)}
                      disabled={i === 0}
                      aria-label={`Move field ${i + 1} up`}
                    >
                      ↑ Up
                    </button>
                    <button
                      type="button"
                      onClick={() => move(i, 1)}
                      disabled={i === fields.length - 1}
                      aria-label={`Move field ${i + 1} down`}
                    >
                      ↓ Down
                    </button>
                    <button
                      type="button"
                      className="danger"
                      onClick={() => setFields((list) => list.filter((x) => x.key !== f.key))}
                      disabled={fields.length === 1}
                      aria-label={`Remove field ${i + 1}`}
                    >
                      Remove
                    </button>
                  </div>
                </fieldset>
              </li>
            ))}
          </ol>
          <button type="button" onClick={() => setFields((list) => [...list, newField()])}>
            Add a field
          </button>
        </fieldset>

        <div className="grid-2">
          <Field
            label="Key field"
            hint="Unique per record: uploading a record with the same key updates it. STRING or INTEGER."
            problem={problemsAt(error, 'keyField')}
          >
            {(a) => (
              <NameSelect
                attributes={a}
                value={keyField}
                onChange={setKeyField}
                names={names}
                none="Choose a field"
              />
            )}
          </Field>
          <Field
            label="Subject field (optional)"
            hint="Your own person id, used to record and enforce consent."
            problem={problemsAt(error, 'subjectField')}
          >
            {(a) => (
              <NameSelect
                attributes={a}
                value={subjectField}
                onChange={setSubjectField}
                names={names}
                none="None"
              />
            )}
          </Field>
        </div>
        <fieldset>
          <legend>Retention (optional)</legend>
          <p className="muted">
            Records older than this are destroyed by the daily retention job, with everything derived from
            them. It can be changed later on the dataset&apos;s page.
          </p>
          <div className="grid-2">
            <Field
              label="Retention (days)"
              hint="A whole number of days, 1 to 36,500."
              problem={
                retentionProblems.find((p) => p.path === 'retentionDays')?.message ??
                problemsAt(error, 'retentionDays')
              }
            >
              {(a) => (
                <input
                  {...a}
                  inputMode="numeric"
                  value={retentionDays}
                  onChange={(e) => setRetentionDays(e.target.value)}
                  autoComplete="off"
                />
              )}
            </Field>
            <Field
              label="Measured from"
              hint={
                dated.length ? 'A DATE or DATETIME field.' : 'Add a DATE or DATETIME field to set retention.'
              }
              problem={
                retentionProblems.find((p) => p.path === 'retentionField')?.message ??
                problemsAt(error, 'retentionField')
              }
            >
              {(a) => (
                <NameSelect
                  attributes={a}
                  value={retentionField}
                  onChange={setRetentionField}
                  names={dated}
                  none="None"
                />
              )}
            </Field>
          </div>
        </fieldset>
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Registering…' : 'Register dataset'}
          </button>
          <Link to="/datasets">Cancel</Link>
        </div>
      </form>
    </>
  );
}
