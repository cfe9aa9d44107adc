/**
 * Which records are past their dataset's retention (DESIGN §4.4), written once for the job that
 * destroys them (RetentionService) and the preview that counts them beforehand
 * (RetentionPreviewService): what one counts is what the other destroys.
 */

/** What runs one statement: a DataSource, an EntityManager. */
interface Queryable {
  query<T = unknown>(sql: string, params?: unknown[]): Promise<T>;
}

/**
 * The instant before which a record's retention field is past retention: `now` (default: the
 * database's clock) less `days` days of 24 hours, counted in UTC, so that neither the database's
 * `TimeZone` nor a change of clocks moves it. Read back as a Date, as the job binds it to each batch
 * (through {@link cutoffParameter}), so a preview at the same `now` uses the very same cutoff.
 */
export async function retentionCutoff(db: Queryable, days: number, now?: Date | null): Promise<Date> {
  const [{ cutoff }] = await db.query<{ cutoff: Date }[]>(
    `SELECT (coalesce($1::timestamptz, clock_timestamp()) AT TIME ZONE 'UTC' - make_interval(days => $2))
              AT TIME ZONE 'UTC' AS cutoff`,
    [now ?? null, days],
  );
  return cutoff;
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
