import { type ArgumentsHost, NotFoundException, PayloadTooLargeException } from '@nestjs/common';
import type { Logger } from 'pino';
import { BrokerError, ErrorCode } from '../errors/broker-error';
import { ContractErrorFilter } from './broker-error.filter';

/** What a REST handler's error is answered with, on a REST route and on a data-plane route. */
function answer(error: unknown, url: string) {
  const sent: { status?: number; body?: unknown } = {};
  const reply = {
    status(code: number) {
      sent.status = code;
      return reply;
    },
    send(body: unknown) {
      sent.body = body;
      return reply;
    },
  };
  const host = {
    getType: () => 'http',
    switchToHttp: () => ({ getResponse: () => reply, getRequest: () => ({ url }) }),
  } as unknown as ArgumentsHost;
  const logged: unknown[] = [];
  const logger = { error: (...args: unknown[]) => logged.push(args) } as unknown as Logger;
  new ContractErrorFilter(logger).catch(error, host);
  return { ...sent, logged: logged.length };
}

describe('ContractErrorFilter', () => {
  it('answers refusals with their contract code and reason, in the route’s shape', () => {
    const refusal = new BrokerError(ErrorCode.FORBIDDEN, 'Not yours', { reason: 'ROLE' });
    expect(answer(refusal, '/api/datasets/x/records')).toEqual({
      status: 403,
      body: { error: 'Not yours', code: 'FORBIDDEN', reason: 'ROLE' },
      logged: 0,
    });
    expect(answer(refusal, '/data/export')).toEqual({
      status: 403,
      body: {
        data: null,
        errors: [{ message: 'Not yours', extensions: { code: 'FORBIDDEN', reason: 'ROLE' } }],
      },
      logged: 0,
    });
    expect(answer(new NotFoundException('Cannot GET /api/nope'), '/api/nope')).toMatchObject({
      status: 404,
      body: { code: 'NOT_FOUND' },
    });
    expect(answer(new PayloadTooLargeException(), '/api/datasets/x/records')).toMatchObject({
      status: 413,
      body: { code: 'BAD_USER_INPUT', reason: 'LIMIT' },
    });
  });

  it('answers what PostgreSQL refused because of the input as a 4xx, never a 500', () => {
    const pg = (code: string) => Object.assign(new Error('from PostgreSQL'), { code });
    expect(answer(pg('22P02'), '/api/x')).toMatchObject({
      status: 400,
      body: { code: 'BAD_USER_INPUT', reason: 'INVALID' },
      logged: 0,
    });
    expect(answer(pg('23503'), '/api/x')).toMatchObject({
      status: 404,
      body: { code: 'NOT_FOUND' },
    });
    expect(answer(pg('54000'), '/data/export')).toMatchObject({
      status: 400,
      body: { data: null, errors: [{ extensions: { code: 'BAD_USER_INPUT', reason: 'LIMIT' } }] },
    });
  });

  it('logs a failure of the broker and answers it in the contract’s shape, saying nothing of it', () => {
    const failure = new TypeError("Cannot read properties of undefined (reading 'secret')");
    const res = answer(failure, '/api/x');
    expect(res).toEqual({
      status: 500,
      body: { error: 'Internal error', code: 'INTERNAL_SERVER_ERROR' },
      logged: 1,
    });
    expect(JSON.stringify(res.body)).not.toContain('secret');
  });
});
