import http from 'node:http';
import type { TestBroker } from '@broker/testing';

/**
 * A CSV export request of `apiKey`'s over TCP to `broker` (not inject: the client reads as a real one
 * does), sent once `query` is written to it; `onResponse` takes the response, if one comes.
 */
export async function exportRequest(
  broker: TestBroker,
  apiKey: string,
  onResponse?: (res: http.IncomingMessage) => void,
): Promise<http.ClientRequest> {
  const url = new URL(await broker.listen());
  return http.request(
    {
      host: url.hostname,
      port: url.port,
      path: '/data/export',
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, accept: 'text/csv', 'content-type': 'application/json' },
    },
    onResponse,
  );
}

/**
 * The CSV export of `query` over TCP, `onChunk` seeing each chunk as it comes (with the request, to
 * leave it): its bytes and lines, whether it ended complete, and whether it failed (an error or an
 * aborted response).
 */
export async function exportOverTcp(
  broker: TestBroker,
  apiKey: string,
  query: string,
  onChunk: (res: http.IncomingMessage, req: http.ClientRequest) => void,
): Promise<{ bytes: number; lines: number; complete: boolean; failed: boolean }> {
  let bytes = 0;
  let lines = 0;
  let settle!: (outcome: { bytes: number; lines: number; complete: boolean; failed: boolean }) => void;
  const settled = new Promise<{ bytes: number; lines: number; complete: boolean; failed: boolean }>(
    (resolve) => (settle = resolve),
  );
  const req = await exportRequest(broker, apiKey, (res) => {
    const outcome = (failed: boolean) => settle({ bytes, lines, complete: res.complete, failed });
    res.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      onChunk(res, req);
    });
    res.on('end', () => outcome(false));
    res.on('error', () => outcome(true));
    res.on('aborted', () => outcome(true));
    res.on('close', () => outcome(!res.complete));
  });
  req.on('error', () => settle({ bytes, lines, complete: false, failed: true }));
  req.end(JSON.stringify({ query }));
  return settled;
}
