import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, print } from 'graphql';
import {
  DEMO_COUNTY,
  DEMO_ENV_FILE,
  RECIDIVISM_QUERY,
  type SeededCounty,
  TestBroker,
  demoEnv,
  httpBrokerClient,
  parseDemoEnv,
  recidivismTruth,
  seedCounty,
} from '@broker/testing';

const README = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

/** The README's runnable examples: the bash blocks between the example markers, in order. */
function bashExamples(): string[] {
  const begin = README.indexOf('<!-- examples:begin -->');
  const end = README.indexOf('<!-- examples:end -->');
  if (begin < 0 || end < begin) throw new Error('README.md has no examples:begin / examples:end markers');
  return [...README.slice(begin, end).matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** The README's GraphQL examples between the example markers, in order. */
function graphqlExamples(): string[] {
  const begin = README.indexOf('<!-- examples:begin -->');
  const end = README.indexOf('<!-- examples:end -->');
  return [...README.slice(begin, end).matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** The rows of the table of the county's question: program, then its other cells as written. */
function recidivismTable(): { program: string; cells: string[] }[] {
  const lines = README.slice(README.indexOf('| program ')).split('\n');
  const rows = lines.slice(
    2,
    lines.findIndex((line) => !line.startsWith('|')),
  );
  return rows.map((line) => {
    const [program, ...cells] = line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim());
    return { program, cells };
  });
}

/** The rows of the table "What each role sees in the demo": user variable, endpoint, request, answer. */
function roleTable(): { user: string; endpoint: string; request: string; answer: string }[] {
  const section = README.slice(README.indexOf('### What each role sees in the demo'));
  return section
    .split('\n')
    .filter((line) => /^\| `\$[A-Z_]+`/.test(line))
    .map((line) => {
      const cells = line.split(' | ').map((c) => c.replace(/^\|\s*|\s*\|$/g, '').trim());
      const code = (cell: string) => /^`(.*)`$/.exec(cell)![1];
      return {
        user: code(cells[0]).slice(1),
        endpoint: code(cells[1]),
        request: code(cells[2]),
        answer: cells[3],
      };
    });
}

/** Every JSON object a block printed, one per line (the `gql` helper ends each answer with a newline). */
function answers(output: string): Record<string, any>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, any>);
}

/**
 * "Every README example runs as it stands against `npm run demo`": the examples run in bash, in
 * order, in a directory holding the `demo.env` the demo would write, against a broker seeded with the
 * demo's county by the demo's own seeding; then every request of the role table.
 */
describe('README examples', () => {
  let broker: TestBroker;
  let county: SeededCounty;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'readme' });
    const baseUrl = await broker.listen();
    // The demo's county: its default seed and size, so the counts are the demo's.
    county = await seedCounty(httpBrokerClient(baseUrl), { operatorKey: broker.operatorKey, ...DEMO_COUNTY });
    dir = mkdtempSync(join(tmpdir(), 'broker-readme-'));
    const text = demoEnv(county, { baseUrl, databaseUrl: broker.config.DATABASE_URL });
    writeFileSync(join(dir, DEMO_ENV_FILE), text);
    env = parseDemoEnv(text);
  }, 120_000);

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await broker?.close();
  });

  it('runs every bash example in order, each GraphQL answer with data and no error', async () => {
    const blocks = bashExamples();
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    const script = ['set -euo pipefail', ...blocks.map((b, i) => `${b}\necho '@@ end of example ${i} @@'`)];
    const { stdout } = await promisify(execFile)('bash', ['-c', script.join('\n')], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      maxBuffer: 16 * 1024 * 1024,
    });
    const outputs = stdout.split(/@@ end of example \d+ @@\n/).slice(0, blocks.length);
    expect(outputs).toHaveLength(blocks.length);
    // The first block only defines the helper; every other one prints at least one answer.
    expect(outputs[0]).toBe('');
    const all = outputs.slice(1).map(answers);
    // The export's block prints the head of its CSV file rather than a JSON answer.
    const exported = outputs.find((output) => output.startsWith('program,completed,dob_year,personKey\n'));
    expect(exported?.split('\n').slice(1, 3)).toEqual([
      expect.stringMatching(/^"[A-Za-z ]+",(true|false|),(\d{4}|),("[0-9a-f]{64}"|)$/),
      expect.stringMatching(/^"[A-Za-z ]+",(true|false|),(\d{4}|),("[0-9a-f]{64}"|)$/),
    ]);
    expect(readFileSync(join(dir, 'participation.csv'), 'utf8').trimEnd().split('\n')).toHaveLength(
      1 + county.datasets.reentry_participation.records,
    );
    for (const [i, printed] of all.entries()) {
      if (outputs[i + 1] === exported) continue;
      expect([i + 1, printed.length > 0]).toEqual([i + 1, true]);
      for (const answer of printed) {
        expect(answer.errors ?? []).toEqual([]);
        if ('data' in answer) expect(answer.data).not.toBeNull();
      }
    }
    const flat = all.flat();
    const find = (key: string): any => flat.find((a) => a.data?.[key] !== undefined)?.data[key] as unknown;
    expect(find('me')).toEqual({ email: expect.any(String), role: 'OPERATOR' });
    expect(find('createUser').user.role).toBe('STEWARD');
    expect(flat.find((a) => 'inserted' in a && !('data' in a))).toEqual({
      inserted: 2,
      updated: 0,
      rejected: 0,
      errors: [],
    });
    expect(find('ingestRecords')).toEqual({ inserted: 1, updated: 0, rejected: 0, errors: [] });
    expect(find('approveAgreement')).toEqual({ status: 'ACTIVE', inForceVersion: 1 });
    expect(find('jail_visits').nodes).toEqual([
      { visit_date: '2024-05-01', dob_year: 1984, last_name_hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      { visit_date: '2024-05-02', dob_year: null, last_name_hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      { visit_date: '2024-05-03', dob_year: null, last_name_hash: null },
    ]);
    expect(find('revokeAgreement')).toEqual({ status: 'REVOKED' });
    // The aggregate answers with counts (the demo's programs), not an empty list.
    const groups = find('reentry_participation_aggregate').groups as { count: number | null }[];
    expect(groups.filter((g) => g.count !== null && g.count >= 11).length).toBeGreaterThan(1);
    expect(find('subjectAccessReport')).toEqual([]);
    // An answer a block shows in a comment (`# {"data":…, ...`) begins an answer it printed.
    const shown = bashExamples()
      .flatMap((block) => block.split('\n'))
      .map((line) => /^# (\{.*), \.\.\.$/.exec(line)?.[1])
      .filter((prefix): prefix is string => prefix !== undefined);
    expect(shown.length).toBeGreaterThan(0);
    const printed = flat.map((answer) => JSON.stringify(answer));
    for (const prefix of shown) {
      expect([prefix, printed.some((line) => line.startsWith(prefix))]).toEqual([prefix, true]);
    }
  });

  it("runs the county's question as written, and its table's truth is the generator's", async () => {
    const [query, ...others] = graphqlExamples();
    expect(others).toEqual([]);
    // The very query test/demo-recidivism.spec.ts checks against the truth, as the README lays it out.
    expect(print(parse(query))).toBe(print(parse(RECIDIVISM_QUERY)));
    // As a reader runs it: the two counts-only agreements' ids from demo.env as its variables.
    const variables = {
      cohort: env.CBO_RESEARCH_REENTRY_PARTICIPATION_COUNTS_AGREEMENT_ID,
      outcome: env.SHERIFF_RESEARCH_JAIL_BOOKINGS_COUNTS_AGREEMENT_ID,
    };
    expect(Object.values(variables)).toEqual([expect.any(String), expect.any(String)]);
    const result = await broker.gql(env.ANALYST_RESEARCH, query, variables, '/data/graphql');
    expect(result.errors).toBeUndefined();
    const data = result.data as Record<string, { groups: { key: { program: string } }[]; noise: number }>;
    expect([data.completers.noise, data.rebooked.noise]).toEqual([2, 2]);
    const truth = recidivismTruth(county.county);
    expect(data.completers.groups.map((g) => g.key.program).sort()).toEqual([...truth.keys()].sort());

    // The table: a line per program; each shown count within ±2 of its truth, the truth the
    // generator's (seed 2025, 5,000 people), a count left out only where the truth is small.
    const table = recidivismTable();
    expect(table.map((row) => row.program).sort()).toEqual([...truth.keys()].sort());
    for (const { program, cells } of table) {
      const [completers, rebooked, rate, written] = cells;
      const t = truth.get(program)!;
      expect([program, written]).toEqual([program, `${t.completers}, ${t.rebooked}`]);
      expect([program, Math.abs(Number(completers) - t.completers) <= 2]).toEqual([program, true]);
      if (/^\d+$/.test(rebooked)) {
        expect([program, Math.abs(Number(rebooked) - t.rebooked) <= 2]).toEqual([program, true]);
        expect([program, rate]).toEqual([
          program,
          `${Math.round((100 * Number(rebooked)) / Number(completers))}%`,
        ]);
      } else {
        expect([program, rebooked, rate, t.rebooked <= 5 + 1]).toEqual([
          program,
          '(below the minimum of 5)',
          '',
          true,
        ]);
      }
    }
  });

  it('answers every request of the role table as the table says', async () => {
    const rows = roleTable();
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const row of rows) {
      const key = env[row.user];
      expect([row.user, typeof key]).toEqual([row.user, 'string']);
      // A "$NAME" in a request is a value of demo.env (an agreement's id), as a reader substitutes it.
      const request = row.request.replace(
        /\$([A-Z][A-Z0-9_]*)/g,
        (_, name: string) => env[name] ?? `$${name}`,
      );
      const result = await broker.gql(key, request, undefined, row.endpoint);
      const label = `${row.user} ${row.request}`;
      if (row.answer.includes('`FORBIDDEN`')) {
        expect([label, result.data, result.errors?.[0]?.extensions?.code]).toEqual([
          label,
          null,
          'FORBIDDEN',
        ]);
      } else {
        expect([label, result.errors]).toEqual([label, undefined]);
        // Each answer has something in it: rows, groups, agreements, events.
        const values = Object.values(result.data!);
        for (const value of values) {
          const list = Array.isArray(value) ? value : (value.nodes ?? value.groups ?? [value]);
          expect([label, (list as unknown[]).length > 0]).toEqual([label, true]);
        }
      }
    }
  });
});
