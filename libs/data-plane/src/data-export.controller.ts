import { Body, Controller, Headers, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { renderGraphQLError } from '@broker/core';
import { DataExportService } from './data-export.service';
import type { DataPlaneRequest } from './plan';
import type { ExportFormat } from './export-sql';

/** The media types an export is written in, by what `Accept` names. */
const FORMATS: Record<string, ExportFormat> = { 'text/csv': 'csv', 'application/x-ndjson': 'ndjson' };

/** The format an `Accept` header asks for, the first it names that an export is written in. */
export function acceptedFormat(accept: string | undefined): ExportFormat | null {
  for (const part of (accept ?? '').split(',')) {
    const [type, ...parameters] = part.split(';').map((p) => p.trim().toLowerCase());
    // `q=0` says "not this one".
    if (parameters.some((p) => /^q=0(\.0*)?$/.test(p))) continue;
    const format = FORMATS[type];
    if (format) return format;
  }
  return null;
}

/**
 * `POST /data/export`: every signed-in user may ask, as on `/data/graphql`; the data plane answers
 * only analysts, within their agency's agreements. The rows stream as CSV or NDJSON (`Accept`, else
 * 406); a refusal is the JSON refusal of `/data/graphql`, with a 4xx status.
 */
@Controller('data/export')
export class DataExportController {
  constructor(private readonly exports: DataExportService) {}

  @Allow(Role.ANALYST, Role.STEWARD, Role.OPERATOR, Role.AUDITOR)
  @Post()
  async export(
    @Ctx() ctx: RequestContext,
    @Body() body: DataPlaneRequest,
    @Headers('accept') accept: string | undefined,
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
    const answer = await this.exports.export(ctx, body, format);
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
