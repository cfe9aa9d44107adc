import type { County, CountyRecord } from './county-generator';

/** Days after completing a program within which a new booking counts as recidivism. */
export const RECIDIVISM_WINDOW_DAYS = 365;

/**
 * The county's question as one data-plane request of the research office (issue 13): per re-entry
 * program, how many participants completed it, and how many of them were booked again within 365
 * days of completing it. Both are counts under the counts-only agreements (`$cohort`: program
 * completions; `$outcome`: bookings and releases), the second a linked count over the linkage
 * result, so the office holds no row of either agency.
 */
export const RECIDIVISM_QUERY = `query Recidivism($cohort: ID!, $outcome: ID!) {
  completers: reentry_participation_aggregate(
    purpose: RECIDIVISM_EVALUATION, agreement: $cohort
    where: { completed_on: { isNull: false } }, groupBy: [program]
  ) { groups { key count suppressed } noise }
  rebooked: reentry_participation_aggregate(
    purpose: RECIDIVISM_EVALUATION, agreement: $cohort
    where: { completed_on: { isNull: false } }, groupBy: [program]
    linked: { jail_bookings: {
      agreement: $outcome, on: booking_date, after: completed_on, minDays: 0, maxDays: ${RECIDIVISM_WINDOW_DAYS}
    } }
  ) { groups { key count suppressed } noise }
}`;

/** One program's line of the answer. */
export interface RecidivismLine {
  program: string;
  completers: number | null;
  rebooked: number | null;
  /** rebooked / completers, or null where either is not shown. */
  rate: number | null;
}

type Answer = { groups: { key: Record<string, unknown>; count: number | null }[] };

/** The lines of a {@link RECIDIVISM_QUERY} answer, by program. */
export function recidivismLines(data: { completers: Answer; rebooked: Answer }): RecidivismLine[] {
  const programs = new Set<string>();
  const count = (answer: Answer) => {
    const byProgram = new Map<string, number | null>();
    for (const g of answer.groups) {
      programs.add(String(g.key.program));
      byProgram.set(String(g.key.program), g.count);
    }
    return byProgram;
  };
  const completers = count(data.completers);
  const rebooked = count(data.rebooked);
  return [...programs].sort().map((program) => {
    const c = completers.get(program) ?? null;
    const r = rebooked.get(program) ?? null;
    return { program, completers: c, rebooked: r, rate: c && r !== null ? r / c : null };
  });
}

const dayOf = (value: CountyRecord[string]) =>
  typeof value === 'string' ? Date.parse(`${value}T00:00:00Z`) / 86_400_000 : null;

/**
 * The generator's ground truth of the question: per program, completions, and those whose person
 * (the truth behind the records, not linkage) has a booking 0..365 days after the completion.
 */
export function recidivismTruth(county: County): Map<string, { completers: number; rebooked: number }> {
  const participation = county.datasets.find((d) => d.slug === 'reentry_participation')!;
  const bookings = county.datasets.find((d) => d.slug === 'jail_bookings')!;
  const bookingDays = new Map<number, number[]>();
  bookings.records.forEach((record, i) => {
    const day = dayOf(record.booking_date);
    if (day === null) return;
    const person = bookings.truth[i];
    bookingDays.set(person, [...(bookingDays.get(person) ?? []), day]);
  });
  const truth = new Map<string, { completers: number; rebooked: number }>();
  participation.records.forEach((record, i) => {
    const completed = dayOf(record.completed_on);
    if (completed === null) return;
    const line = truth.get(String(record.program)) ?? { completers: 0, rebooked: 0 };
    line.completers++;
    const days = bookingDays.get(participation.truth[i]) ?? [];
    if (days.some((d) => d - completed >= 0 && d - completed <= RECIDIVISM_WINDOW_DAYS)) line.rebooked++;
    truth.set(String(record.program), line);
  });
  return truth;
}
