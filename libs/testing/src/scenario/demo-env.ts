/**
 * `demo.env`: what `npm run demo` leaves for the README's examples and `npm run audit:verify`: the
 * broker's URL, the demo database, one API key per demo user and the ids of its agencies, datasets
 * and agreements, as shell variables (`. ./demo.env`).
 */
import type { SeededCounty } from './seed-county';

/** Where the demo writes it: the directory `npm run demo` runs in (the repository). */
export const DEMO_ENV_FILE = 'demo.env';

/**
 * The county `npm run demo` seeds unless DEMO_SEED or DEMO_PEOPLE say otherwise: the README's
 * example answers are this county's.
 */
export const DEMO_COUNTY = { seed: 2025, people: 5000 } as const;

/** A variable name of a demo handle or slug: `steward:CBO` → `STEWARD_CBO`. */
function variableName(text: string): string {
  return text.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

/** The text of `demo.env` for a seeded county. */
export function demoEnv(county: SeededCounty, options: { baseUrl: string; databaseUrl: string }): string {
  const lines = [
    '# Written by `npm run demo` on every run (its keys and ids are new each time); `. ./demo.env` reads it.',
    `BROKER=${options.baseUrl}`,
    `DATABASE_URL=${options.databaseUrl}`,
    `OPERATOR=${county.operatorKey}`,
    ...county.users.map((u) => `${variableName(u.handle.replace(':OVERSIGHT', ''))}=${u.apiKey}`),
    ...Object.entries(county.agencies).map(([role, a]) => `${variableName(role)}_AGENCY_ID=${a.id}`),
    ...Object.values(county.datasets).map((d) => `${variableName(d.slug)}_ID=${d.id}`),
    ...agreementVariables(county.agreements),
  ];
  // Values in single quotes, so a URL with a password of any characters stays one word.
  const quoted = lines.map((line) =>
    line.startsWith('#') ? line : line.replace(/=(.*)$/, (_, v: string) => `='${v.replace(/'/g, `'\\''`)}'`),
  );
  return `${quoted.join('\n')}\n`;
}

/** The variables of a `demo.env` text (`NAME=value` lines; comments and blank lines skipped). */
export function parseDemoEnv(text: string): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)='(.*)'$/.exec(line.trim());
    if (match) variables[match[1]] = match[2].replace(/'\\''/g, "'");
  }
  return variables;
}

/**
 * One variable per agreement: `<PROVIDER>_<RECIPIENT>_<DATASET>_AGREEMENT_ID`, and for a second
 * agreement over the same dataset (the counts-only ones of the recidivism question) the same with
 * `_COUNTS`, so no variable is written twice.
 */
function agreementVariables(agreements: SeededCounty['agreements']): string[] {
  const taken = new Set<string>();
  return agreements.map((a) => {
    let name = `${variableName(`${a.provider}_${a.recipient}_${a.dataset}`)}_AGREEMENT_ID`;
    if (taken.has(name)) name = name.replace(/_AGREEMENT_ID$/, '_COUNTS_AGREEMENT_ID');
    taken.add(name);
    return `${name}=${a.id}`;
  });
}
