import { PassThrough, type Readable } from 'node:stream';
import { to as copyTo } from 'pg-copy-streams';
import type { Transaction } from '@broker/core';
import type { DataPlaneRefusal } from './plan';
import { orderRefusals } from './response';

/** The status of an export's refusal: that of its first refusal's code, always a 4xx. */
export function exportStatus(refusals: DataPlaneRefusal[]): number {
  const code = orderRefusals(refusals)[0]?.code;
  return code === 'FORBIDDEN' ? 403 : code === 'NOT_FOUND' ? 404 : 400;
}

/**
 * The rows of an export as a byte stream: the header, then what PostgreSQL's `COPY … TO STDOUT`
 * writes, passed on as it comes and only as fast as the client reads (pg-copy-streams stops reading
 * the connection while the response is full, so memory stays bounded). It ends after the last row
 * and COMMIT; a failure midway destroys it, so the HTTP response ends without its final chunk and the
 * client sees the failure. A client that goes away midway destroys it too, and with it the
 * connection, whose transaction dies with it.
 */
export function exportStream(
  tx: Transaction,
  copy: string,
  header: string | null,
  onFailure: (error: Error) => void,
  onDone: () => void = () => undefined,
): Readable {
  const { client } = tx;
  let released = false;
  const release = (error?: Error) => {
    if (released) return;
    released = true;
    client.off('error', onFailed);
    // A failed or abandoned export's connection is destroyed: its transaction dies with it.
    tx.abandon(error);
  };
  const onFailed = (error: Error) => {
    if (released) return;
    onFailure(error);
    release(error);
    out.destroy(error);
  };
  const out = new PassThrough({
    highWaterMark: 1 << 20,
    destroy(error, callback) {
      release(error ?? undefined);
      callback(error);
    },
  });
  // The connection can fail while the client is slow to read: pg then emits 'error' on it, which
  // must cut the stream, never go unhandled.
  client.on('error', onFailed);
  if (header !== null) out.write(`${header}\n`);
  const rows = client.query(copyTo(copy));
  rows.on('error', onFailed);
  rows.on('end', () => {
    tx.commit().then(
      () => {
        released = true;
        client.off('error', onFailed);
        out.end();
        onDone();
      },
      (error: Error) => onFailed(error),
    );
  });
  rows.pipe(out, { end: false });
  return out;
}
