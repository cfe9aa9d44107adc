import { errorForLog } from './logger';

describe('errorForLog', () => {
  it('keeps the SQLSTATE and object names of a database error, not its message or detail', () => {
    const error = Object.assign(new Error('duplicate key value violates unique constraint "x_pkey"'), {
      severity: 'ERROR',
      code: '23505',
      detail: 'Key (ssn)=(123-45-6789) already exists.',
      table: 'jail_bookings',
      constraint: 'x_pkey',
    });
    const logged = errorForLog(error);
    expect(logged).toMatchObject({
      type: 'DatabaseError',
      code: '23505',
      table: 'jail_bookings',
      constraint: 'x_pkey',
    });
    expect(JSON.stringify(logged)).not.toContain('123-45-6789');
    expect(JSON.stringify(logged)).not.toContain('duplicate key');
  });

  it('keeps the message of other errors', () => {
    expect(errorForLog(new TypeError('boom'))).toMatchObject({ type: 'TypeError', message: 'boom' });
  });
});
