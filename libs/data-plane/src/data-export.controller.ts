import { Body, Controller, Headers, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import Negotiator from 'negotiator';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { MetricsService, renderGraphQLError } from '@broker/core';
import { decisionOf } from './data-plane.controller';
import { DataExportService } from './data-export.service';
import type { DataPlaneRequest } from './plan';
import type { ExportFormat } from './export-sql';

/** The media types an export is written in, by what `Accept` names. */
const FORMATS: Record<string, ExportFormat> = { 'text/csv': 'csv', 'application/x-ndjson': 'ndjson' };

/**
 * The format an `Accept` header prefers among those an export is written in (by its q-values, then
 * its order: negotiator's reading of RFC 9110), or null: a wildcard chooses none, so a client that
 * names neither type gets 406 and no rows.
 */
export function acceptedFormat(accept: string | undefined): ExportFormat | null {
  const preferred = new Negotiator({ headers: { accept: accept ?? '' } }).mediaTypes();
  for (const type of preferred) {
    const format = FORMATS[type.toLowerCase()];
    if (format) return format;
  }
  return null;
}

/**
 * `POST /data/export`: every signed-in user may ask, as on `/data/graphql`; the data plane answers
 * only analysts, within their agency's agreements. The rows stream as CSV or NDJSON (`Accept`, else
 * 406); `?formulas=escape` (CSV only) puts a `'` before each text cell a spreadsheet would read as a
 * formula; a refusal is the JSON refusal of `/data/graphql`, with a 4xx status.
 */
@Controller('data/export')
export class DataExportController {
  constructor(
    private readonly exports: DataExportService,
    private readonly metrics: MetricsService,
  ) {}

  @Allow(Role.ANALYST, Role.STEWARD, Role.OPERATOR, Role.AUDITOR)
  @Post()
  async export(
    @Ctx() ctx: RequestContext,
    @Body() body: DataPlaneRequest,
    @Headers('accept') accept: string | undefined,
    @Query('formulas') formulas: unknown,
    @Res() reply: FastifyReply,
  ) {
    reply.header('cache-control', 'no-store');
    const format = acceptedFormat(accept);
    if (!format) {
      return reply.status(406).send({
        data: null,
        errors: [
          renderGraphQLError({
            code: 'BAD_USER_INPUT',
            reason: 'INVALID',
            message: 'An export is written as text/csv or application/x-ndjson: name one in Accept',
          }),
        ],
      });
    }
    // Its refusals are audited by the data plane itself, as EXPORT.
    reply.request.auditedByDataPlane = true;
    const answer = await this.exports.export(ctx, body, format, formulas);
    // Counted with the decisions of /data/graphql (broker_data_plane_decisions_total).
    const { outcome, reason } =
      answer.kind === 'json' ? decisionOf(answer.response) : { outcome: 'ALLOW' as const, reason: 'NONE' };
    this.metrics.recordDecision(outcome, reason);
    if (answer.kind === 'json') {
      const { response } = answer;
      reply.status(response.status);
      if ('json' in response) return reply.type('application/json; charset=utf-8').send(response.json);
      return reply.send(response.body);
    }
    return reply
      .status(200)
      .type(answer.contentType)
      .header('x-row-count', String(answer.rowCount))
      .send(answer.stream);
  }
}
