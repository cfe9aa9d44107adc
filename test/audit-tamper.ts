import type { TestBroker } from '@broker/testing';
import { runAuditVerify } from '../scripts/audit-verify';

/**
 * Makes `change` to the database behind the broker's back and expects verification, through the API
 * (as the AUDITOR `auditorKey`) and the offline script, to find the log broken at `seq`; then undoes
 * it and expects the whole log to verify again.
 */
export async function expectBrokenAt(
  broker: TestBroker,
  auditorKey: string,
  seq: number,
  change: () => Promise<unknown>,
  undo: () => Promise<unknown>,
): Promise<void> {
  await change();
  try {
    expect(await broker.verifyAuditChain(auditorKey)).toEqual({
      valid: false,
      checked: seq - 1,
      firstBrokenSeq: seq,
    });
    await expect(runAuditVerify(broker.config.DATABASE_URL)).resolves.toMatchObject({
      valid: false,
      firstBrokenSeq: seq,
    });
  } finally {
    await undo();
  }
  expect(await broker.verifyAuditChain(auditorKey)).toEqual({
    valid: true,
    checked: await broker.auditHeadSeq(),
    firstBrokenSeq: null,
  });
}
