/**
 * Which records are past their dataset's retention (DESIGN §4.4), written once for the job that
 * destroys them (RetentionService) and the preview that counts them beforehand
 * (RetentionPreviewService): what one counts is what the other destroys.
 */

/** What runs one statement: a DataSource, an EntityManager. */
interface Queryable {
  query<T = unknown>(sql: string, params?: unknown[]): Promise<T>;
}

/** A day of retention: 24 hours, counted in UTC (no change of clocks lengthens or shortens it). */
const DAY_MS = 86_400_000;

/**
 * The instant before which a record's retention field is past retention: `now` (default: the
 * database's clock, read once) less `days` days of 24 hours, so that neither a time zone nor a change
 * of clocks moves it. The job computes it once per run and binds it to each batch (through
 * {@link cutoffParameter}); a preview at the same `now` gets the very same cutoff.
 */
export async function retentionCutoff(db: Queryable, days: number, now?: Date | null): Promise<Date> {
  const at = now ?? (await db.query<{ now: Date }[]>(`SELECT clock_timestamp() AS now`))[0].now;
  return new Date(at.getTime() - days * DAY_MS);
}

/**
 * The value a cutoff is bound as wherever {@link pastRetentionSql} compares with it: the instant in
 * UTC (ISO 8601), never a Date the driver would write in the process's local time zone.
 */
export function cutoffParameter(cutoff: Date): string {
  return cutoff.toISOString();
}

/**
 * The condition a record past retention meets: its retention field (`column`, quoted) before the
 * cutoff (`cutoff`, a bind parameter such as `$1`, bound to {@link cutoffParameter}).
 *
 * The parameter stays untyped, so PostgreSQL takes it as the field's type: a DATETIME is compared
 * with the cutoff instant (a record exactly at it is kept); a DATE with the cutoff's calendar day in
 * UTC (a date reads the day of an ISO instant and ignores its time), so a record dated that day is
 * kept and one dated the day before is past, whatever the time zone of the broker, the worker or
 * the database. A null date is never before anything: such records are kept (see
 * {@link undatedSql}).
 */
export function pastRetentionSql(column: string, cutoff: string): string {
  return `${column} < ${cutoff}`;
}

/** The records retention never destroys, as it cannot date them: their retention field is null. */
export function undatedSql(column: string): string {
  return `${column} IS NULL`;
}
