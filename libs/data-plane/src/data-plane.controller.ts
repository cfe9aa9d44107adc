import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { MetricsService } from '@broker/core';
import { type DataPlaneRequest, type DataPlaneResponse, DataPlaneService } from './data-plane.service';

/**
 * The decision a response carries, for metrics: a refusal answers `data: null` with the reason in
 * its first error (`extensions.reason`, else its code); anything else was allowed.
 */
export function decisionOf(response: DataPlaneResponse): { outcome: 'ALLOW' | 'DENY'; reason: string } {
  if ('json' in response) return { outcome: 'ALLOW', reason: 'NONE' };
  const body = response.body as { data?: unknown; errors?: { extensions?: Record<string, unknown> }[] };
  if (body.data !== null || !body.errors?.length) return { outcome: 'ALLOW', reason: 'NONE' };
  const extensions = body.errors[0].extensions ?? {};
  const reason = extensions.reason ?? extensions.code;
  return { outcome: 'DENY', reason: typeof reason === 'string' ? reason : 'OTHER' };
}

/**
 * `POST /data/graphql`: every signed-in user may ask; the service answers only analysts, within
 * their agency's agreements, in GraphQL's response shape (refusals included).
 */
@Controller('data/graphql')
export class DataPlaneController {
  constructor(
    private readonly dataPlane: DataPlaneService,
    private readonly metrics: MetricsService,
  ) {}

  @Allow(Role.ANALYST, Role.STEWARD, Role.OPERATOR, Role.AUDITOR)
  @Post()
  @HttpCode(200)
  async query(@Ctx() ctx: RequestContext, @Body() body: DataPlaneRequest, @Res() reply: FastifyReply) {
    const response = await this.dataPlane.handle(ctx, body);
    // Its refusals are audited by the data plane itself.
    reply.request.auditedByDataPlane = true;
    // The one place data-plane decisions are counted (broker_data_plane_decisions_total).
    const { outcome, reason } = decisionOf(response);
    this.metrics.recordDecision(outcome, reason);
    reply.status(response.status).header('cache-control', 'no-store');
    if ('json' in response) return reply.type('application/json; charset=utf-8').send(response.json);
    return reply.send(response.body);
  }
}
