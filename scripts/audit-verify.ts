/**
 * `npm run audit:verify`: verifies the audit log's hash chain in the database at DATABASE_URL (when
 * unset: the demo's, named in the `demo.env` that `npm run demo` writes, else
 * postgres://postgres@127.0.0.1:5432/broker), with a plain pg connection and no broker running.
 * Prints `audit chain valid: N events checked` or `audit chain BROKEN at seq N (M events checked)`.
 *
 * `--head SEQ:HASH` (repeatable) names a head written down earlier, as the public register shows it:
 * the log must still hold an event with that seq and hash. Without one, a tail cut off together with
 * `audit_head`, or a log resealed from some event on, by someone who can write to the database,
 * verifies as valid: the hash chain has no secret, and the head is in the same database.
 *
 * Exit codes: 0 valid, 1 broken, 2 could not verify (configuration, connection, missing tables), so
 * a scheduler can tell tampering from an outage.
 */
import { Client } from 'pg';
import { readFileSync } from 'node:fs';
import { loadConfig, redactUrl } from '@broker/core';
import { DEMO_ENV_FILE, parseDemoEnv } from '../libs/testing/src/scenario/demo-env';
// The verifier itself, not @broker/audit, whose index also loads the Nest module and GraphQL types.
import { type ChainVerification, type KnownHead, knownHeadOfText } from '../libs/audit/src/audit-chain';
import { verifyChain } from '../libs/audit/src/audit-verifier';

/** A verification's result, the line to print and the exit code. */
export interface AuditVerifyOutcome extends ChainVerification {
  exitCode: 0 | 1;
  message: string;
}

/**
 * The heads written down earlier that the arguments name (`--head SEQ:HASH` or `--head=SEQ:HASH`,
 * repeatable); throws on anything else, so a mistyped head is never silently left out.
 */
export function knownHeadsOf(args: readonly string[]): KnownHead[] {
  const heads: KnownHead[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = arg === '--head' ? args[++i] : arg.startsWith('--head=') ? arg.slice(7) : undefined;
    if (value === undefined) throw new Error(`unknown argument ${JSON.stringify(arg)} (use --head SEQ:HASH)`);
    const head = knownHeadOfText(value);
    if (!head)
      throw new Error(`--head must be SEQ:HASH (64 hexadecimal digits), got ${JSON.stringify(value)}`);
    heads.push(head);
  }
  return heads;
}

/**
 * Verifies the chain of the database at `databaseUrl` in one read-only snapshot; the log must still
 * hold each of `knownHeads`.
 */
export async function runAuditVerify(
  databaseUrl: string,
  knownHeads: readonly KnownHead[] = [],
): Promise<AuditVerifyOutcome> {
  const client = new Client({ connectionString: databaseUrl, application_name: 'audit-verify' });
  // A connection lost mid-run rejects the pending query; without a listener it would also crash.
  client.on('error', () => undefined);
  await client.connect();
  try {
    // One snapshot: appends committed while the chain is read are not mistaken for tampering.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const result = await verifyChain(
      async (sql, params) => (await client.query<Record<string, unknown>>(sql, params)).rows,
      { knownHeads },
    );
    await client.query('COMMIT');
    return result.valid
      ? { ...result, exitCode: 0, message: `audit chain valid: ${result.checked} events checked` }
      : {
          ...result,
          exitCode: 1,
          message: `audit chain BROKEN at seq ${result.firstBrokenSeq} (${result.checked} events checked)`,
        };
  } finally {
    await client.end();
  }
}

/**
 * The database to verify: DATABASE_URL when set; otherwise the demo's, when `npm run demo` left a
 * `demo.env` in the working directory; otherwise the broker's default.
 */
export function databaseToVerify(
  env: NodeJS.ProcessEnv,
  demoEnvText: string | null,
): { databaseUrl: string; source: string } {
  if (!env.DATABASE_URL && demoEnvText !== null) {
    const demo = parseDemoEnv(demoEnvText).DATABASE_URL;
    if (demo) return { databaseUrl: demo, source: `the demo's, from ${DEMO_ENV_FILE}` };
  }
  return {
    databaseUrl: loadConfig(env).DATABASE_URL,
    source: env.DATABASE_URL ? 'DATABASE_URL' : 'the default',
  };
}

function readDemoEnv(): string | null {
  try {
    return readFileSync(DEMO_ENV_FILE, 'utf8');
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  try {
    const knownHeads = knownHeadsOf(process.argv.slice(2));
    const { databaseUrl, source } = databaseToVerify(process.env, readDemoEnv());
    process.stdout.write(`verifying ${redactUrl(databaseUrl)} (${source})\n`);
    const outcome = await runAuditVerify(databaseUrl, knownHeads);
    process.stdout.write(`${outcome.message}\n`);
    process.exitCode = outcome.exitCode;
  } catch (error) {
    process.stderr.write(`audit verification failed: ${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}

if (require.main === module) void main();
