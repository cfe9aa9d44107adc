import { Controller, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { BROKER_CONFIG, type BrokerConfig, MetricsService } from '@broker/core';
import { IngestService } from './ingest.service';
import { PayloadTooLargeError, csvSource, limitBytes, ndjsonSource } from './record-sources';

/** Content types the ingest route streams; the broker registers pass-through parsers for them. */
export const STREAMED_CONTENT_TYPES = ['text/csv', 'application/x-ndjson'];

/**
 * `POST /api/datasets/{id}/records`: streams CSV or NDJSON into a dataset with the same
 * all-or-nothing rule as `ingestRecords`. 200 with the report; 422 with the errors when a row is
 * invalid (nothing written); 413 past `INGEST_MAX_BYTES`.
 */
@Controller('api/datasets')
export class IngestController {
  constructor(
    private readonly ingestion: IngestService,
    private readonly metrics: MetricsService,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
  ) {}

  @Allow(Role.STEWARD)
  @Post(':id/records')
  @HttpCode(200)
  async ingest(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    const limit = this.config.INGEST_MAX_BYTES;
    const tooLarge = () => {
      this.metrics.rejectedBatches.inc({ reason: 'too_large' });
      return reply
        .status(413)
        .header('connection', 'close')
        .send({
          error: `The upload is larger than the limit of ${limit} bytes (INGEST_MAX_BYTES)`,
          code: 'PAYLOAD_TOO_LARGE',
        });
    };
    if (Number(request.headers['content-length'] ?? 0) > limit) return tooLarge();
    const [media, ...parameters] = (request.headers['content-type'] ?? '').split(';');
    const type = media.trim().toLowerCase();
    if (!STREAMED_CONTENT_TYPES.includes(type)) {
      return reply.status(415).send({
        error: 'Send records as text/csv (with a header row) or application/x-ndjson',
        code: 'BAD_USER_INPUT',
      });
    }
    // Records are UTF-8 (a CSV may say UTF-16 with its byte-order mark): another charset would be
    // read as UTF-8 and refused row by row, so it is refused here, saying why.
    const charset = parameters
      .map((p) => p.split('='))
      .find(([name]) => name.trim().toLowerCase() === 'charset')?.[1]
      ?.trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return reply.status(415).send({
        error: `Send records in UTF-8, not ${charset.slice(0, 40)}: save the file as UTF-8 (in a spreadsheet, "CSV UTF-8")`,
        code: 'BAD_USER_INPUT',
      });
    }
    const body = limitBytes(request.body as Readable, limit);
    try {
      const report = await this.ingestion.ingest(ctx, id, () =>
        type === 'text/csv' ? csvSource(body) : ndjsonSource(body),
      );
      return reply.status(report.rejected > 0 ? 422 : 200).send(report);
    } catch (error) {
      if (error instanceof PayloadTooLargeError) return tooLarge();
      throw error;
    }
  }
}
