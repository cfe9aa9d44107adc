/**
 * The baseline of `npm run bench:query`: the broker's own statements, run through `pg` and sent as
 * `JSON.stringify` of their rows by a bare Fastify server. Started by bench/query.ts, which sends
 * the statements over IPC (`{ a: { text, values }, ... }` serves `POST /a`, ...) and waits for
 * 'ready'. Listens on 127.0.0.1:$PORT; stops when the parent disconnects.
 */
import { once } from 'node:events';
import Fastify from 'fastify';
import { Pool } from 'pg';

interface Statement {
  text: string;
  values: unknown[];
}

async function main() {
  const [statements] = (await once(process, 'message')) as [Record<string, Statement>];
  // bytea parameters (the agreement's HMAC key) cross the IPC channel as Uint8Array.
  for (const s of Object.values(statements)) {
    s.values = s.values.map((v) => (v instanceof Uint8Array ? Buffer.from(v) : v));
  }
  // As many connections as the broker's pool.
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 20 });
  const app = Fastify();
  for (const [name, statement] of Object.entries(statements)) {
    app.post(`/${name}`, async (): Promise<unknown[]> => {
      const { rows } = await pool.query<Record<string, unknown>>(statement.text, statement.values);
      return rows;
    });
  }
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
  process.send!('ready');
  process.once('disconnect', () => {
    void app.close().then(() => pool.end());
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`baseline failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
