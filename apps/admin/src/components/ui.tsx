import { type ReactNode, useEffect, useId, useRef } from 'react';
import type { ApiError, InputProblem } from '../api/client';
import type { AgreementStatus } from '../api/schema';
import { humanize } from '../lib/format';

/**
 * A page's title. It takes the focus when the page opens, so a screen reader announces the new
 * page and keyboard users continue from its top.
 */
export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Data-sharing broker`;
    heading.current?.focus();
  }, [title]);
  return (
    <header className="page-header">
      <h1 tabIndex={-1} ref={heading}>
        {title}
      </h1>
      {children ? <div className="page-actions">{children}</div> : null}
    </header>
  );
}

const ERROR_TITLES: Record<string, string> = {
  UNAUTHENTICATED: 'Your API key was not accepted',
  FORBIDDEN: 'Not allowed',
  BAD_USER_INPUT: 'Please correct the following',
  NOT_FOUND: 'Not found',
  CONFLICT: 'This changed meanwhile',
  NETWORK: 'No connection',
};

/**
 * A refusal or failure from the broker, with each input problem it listed; or, where the form shows
 * each problem at its input (`problemsAtInputs`), the broker's message word for word.
 */
export function ErrorMessage({
  error,
  title,
  problemsAtInputs = false,
}: {
  error: ApiError | null;
  title?: string;
  problemsAtInputs?: boolean;
}) {
  if (!error) return null;
  return (
    <div className="alert alert-error" role="alert">
      <p className="alert-title">{title ?? ERROR_TITLES[error.code] ?? 'Something went wrong'}</p>
      {error.problems.length && !problemsAtInputs ? (
        <>
          <ProblemList problems={error.problems} />
          <p className="muted small">{error.code}</p>
        </>
      ) : (
        <p>{error.message}</p>
      )}
    </div>
  );
}

/** Problems with inputs, as the broker named them (`grants[0].fields[1].name is not a field of the dataset`). */
export function ProblemList({ problems }: { problems: InputProblem[] }) {
  return (
    <ul className="problems">
      {problems.map((p, i) => (
        <li key={i}>
          {p.path ? <code>{p.path}</code> : null} {p.message}
        </li>
      ))}
    </ul>
  );
}

/** A confirmation that something was done; announced politely. */
export function Notice({ children }: { children: ReactNode }) {
  return (
    <div className="alert alert-ok" role="status">
      {children}
    </div>
  );
}

/** What a list shows when it has nothing yet, and what to do about it. */
export function EmptyState({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="loading" role="status">
      {label}
    </p>
  );
}

/** An agreement's status, in words and colour. */
export function StatusBadge({ status }: { status: AgreementStatus }) {
  return <span className={`badge badge-${status.toLowerCase()}`}>{humanize(status)}</span>;
}

/** A wide table that scrolls sideways in a narrow window, reachable and scrollable by keyboard. */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

/** A labelled form control; `hint` and `problem` are tied to it with aria-describedby. */
export function Field(props: {
  label: string;
  hint?: ReactNode;
  problem?: string | null;
  children: (attrs: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ReactNode;
  className?: string;
}) {
  const id = useId();
  const hintId = props.hint ? `${id}-hint` : undefined;
  const problemId = props.problem ? `${id}-problem` : undefined;
  const describedBy = [hintId, problemId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field ${props.className ?? ''}`}>
      <label htmlFor={id}>{props.label}</label>
      {props.children({
        id,
        'aria-describedby': describedBy,
        'aria-invalid': props.problem ? true : undefined,
      })}
      {props.hint ? (
        <p className="hint" id={hintId}>
          {props.hint}
        </p>
      ) : null}
      {props.problem ? (
        <p className="field-problem" id={problemId}>
          {props.problem}
        </p>
      ) : null}
    </div>
  );
}

/** The problems the broker reported for one input path (and the paths below it). */
export function problemsAt(error: ApiError | null, path: string): string | null {
  if (!error) return null;
  const found = error.problems.filter(
    (p) => p.path === path || p.path.startsWith(`${path}.`) || p.path.startsWith(`${path}[`),
  );
  return found.length
    ? found
        .map((p) =>
          p.path === path ? p.message : `${p.path.slice(path.length).replace(/^\./, '')} ${p.message}`,
        )
        .join('; ')
    : null;
}

/** A progress bar with its label and value in words. */
export function ProgressBar({ label, value }: { label: string; value: number }) {
  const id = useId();
  const percent = Math.round(Math.max(0, Math.min(1, value)) * 100);
  return (
    <div className="progress">
      <label htmlFor={id}>{label}</label>
      <progress id={id} max={100} value={percent} aria-valuetext={`${percent}%`}>
        {percent}%
      </progress>
      <span aria-hidden="true">{percent}%</span>
    </div>
  );
}
