import { Readable } from 'node:stream';
import type { Transaction } from '@broker/core';
import { EXPORT_CURSOR } from './export-sql';
import type { DataPlaneRefusal } from './plan';
import { orderRefusals } from './response';

/** Rows fetched from an export's cursor per round trip: about a megabyte of lines, whatever the total. */
const EXPORT_BATCH = 5_000;

/** The status of an export's refusal: that of its first refusal's code, always a 4xx. */
export function exportStatus(refusals: DataPlaneRefusal[]): number {
  const code = orderRefusals(refusals)[0]?.code;
  return code === 'FORBIDDEN' ? 403 : code === 'NOT_FOUND' ? 404 : 400;
}

/**
 * The rows of an export's cursor as a byte stream, a batch per round trip, fetched only as fast as
 * the client reads (memory stays bounded). It ends after the last row and COMMIT; a failure midway
 * destroys it, so the HTTP response ends without its final chunk and the client sees the failure.
 */
export function exportStream(
  tx: Transaction,
  header: string | null,
  onFailure: (error: Error) => void,
): Readable {
  const { client } = tx;
  let released = false;
  let busy = false;
  const release = (error?: Error) => {
    if (released) return;
    released = true;
    client.off('error', onConnectionError);
    // A failed or abandoned export's connection is destroyed: its transaction dies with it.
    tx.abandon(error);
  };
  // The connection can fail while it waits for the client to read (no query in flight): pg then emits
  // 'error' on it, which must cut the stream, never go unhandled.
  const onConnectionError = (error: Error) => {
    onFailure(error);
    release(error);
    stream.destroy(error);
  };
  client.on('error', onConnectionError);
  const stream: Readable = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (busy || released) return;
      busy = true;
      const first = header;
      header = null;
      client
        .query<{ line: string }>(`FETCH ${EXPORT_BATCH} FROM ${EXPORT_CURSOR}`)
        .then(
          async ({ rows }) => {
            busy = false;
            let chunk = first === null ? '' : `${first}\n`;
            for (const row of rows) chunk += `${row.line}\n`;
            if (rows.length < EXPORT_BATCH) {
              await tx.query(`CLOSE ${EXPORT_CURSOR}`);
              await tx.commit();
              released = true;
              client.off('error', onConnectionError);
              if (chunk) this.push(chunk);
              this.push(null);
              return;
            }
            this.push(chunk);
          },
          (error: Error) => {
            onFailure(error);
            release(error);
            this.destroy(error);
          },
        )
        .catch((error: Error) => {
          onFailure(error);
          release(error);
          this.destroy(error);
        });
    },
    destroy(error, callback) {
      release(error ?? undefined);
      callback(error);
    },
  });
  return stream;
}
