import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createBroker } from '../apps/broker/src/bootstrap';
import { createLogger, dropDatabase, loadConfig } from '@broker/core';
import { createTestDatabase } from '@broker/testing';

/** The broker writes one log line per request, when it completes, with no query string or key. */
describe('request log', () => {
  const lines: Record<string, unknown>[] = [];
  let app: NestFastifyApplication;
  let url: string;

  beforeAll(async () => {
    url = await createTestDatabase('request_log');
    const config = loadConfig({
      DATABASE_URL: url,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: `test_${randomBytes(4).toString('hex')}`,
      BROKER_BOOTSTRAP_TOKEN: `op_${randomBytes(24).toString('base64url')}`,
      LOG_LEVEL: 'info',
    });
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    // The broker's own logger (serializers, redaction), written to memory.
    app = await createBroker(config, createLogger('info', 'broker', sink));
  });
  afterAll(async () => {
    await app.close();
    await dropDatabase(url);
  });

  it('is one line per request, with its status and time, and no query string or key', async () => {
    lines.length = 0;
    const res = await app
      .getHttpAdapter()
      .getInstance()
      .inject({
        method: 'POST',
        url: '/graphql?secret=1',
        headers: { authorization: 'Bearer not-a-valid-key-at-all', 'content-type': 'application/json' },
        payload: JSON.stringify({ query: '{ me { id } }' }),
      });
    expect(res.statusCode).toBe(401);
    const http = lines.filter((l) => l.component === 'http');
    expect(http.map((l) => l.msg)).toEqual(['request completed']);
    expect(http[0]).toMatchObject({ req: { method: 'POST', url: '/graphql' }, res: { statusCode: 401 } });
    expect(typeof http[0].responseTime).toBe('number');
    expect(JSON.stringify(lines)).not.toMatch(/secret=1|not-a-valid-key/);
  });
});
