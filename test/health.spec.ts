import { dropDatabase } from '@broker/core';
import { TestBroker } from '@broker/testing';

describe('GET /health and GET /metrics', () => {
  it('answers 200 with both services up, without a key', async () => {
    const broker = await TestBroker.start({ LABEL: 'health' });
    try {
      const res = await broker.http.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ status: 'ok', postgres: 'up', redis: 'up' });

      await broker.gql(broker.operatorKey, '{ me { id } }');
      const metrics = await broker.http.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.headers['content-type']).toContain('text/plain');
      expect(metrics.body).toMatch(
        /^broker_http_request_duration_seconds_count\{method="POST",route="\/graphql",status="200"\} [1-9]/m,
      );
      expect(metrics.body).toContain('process_resident_memory_bytes');
    } finally {
      await broker.close();
    }
  });

  it('answers 503 when Redis is down', async () => {
    const broker = await TestBroker.start({ LABEL: 'health_redis', REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const res = await broker.http.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(503);
      expect(JSON.parse(res.body)).toEqual({ status: 'unavailable', postgres: 'up', redis: 'down' });
    } finally {
      await broker.close();
    }
  });

  it('answers 503 when PostgreSQL is gone', async () => {
    const broker = await TestBroker.start({ LABEL: 'health_pg' });
    try {
      await dropDatabase(broker.config.DATABASE_URL);
      const res = await broker.http.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(503);
      expect(JSON.parse(res.body)).toMatchObject({ postgres: 'down', redis: 'up' });
    } finally {
      await broker.close();
    }
  });

  it('asks for METRICS_TOKEN when one is set', async () => {
    const broker = await TestBroker.start({ LABEL: 'metrics', METRICS_TOKEN: 'scrape-token-0123456789' });
    try {
      expect((await broker.http.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
      const ok = await broker.http.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: 'Bearer scrape-token-0123456789' },
      });
      expect(ok.statusCode).toBe(200);
    } finally {
      await broker.close();
    }
  });
});
