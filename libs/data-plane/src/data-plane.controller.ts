import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { type DataPlaneRequest, DataPlaneService } from './data-plane.service';

/**
 * `POST /data/graphql`: every signed-in user may ask; the service answers only analysts, within
 * their agency's agreements, in GraphQL's response shape (refusals included).
 */
@Controller('data/graphql')
export class DataPlaneController {
  constructor(private readonly dataPlane: DataPlaneService) {}

  @Allow(Role.ANALYST, Role.STEWARD, Role.OPERATOR, Role.AUDITOR)
  @Post()
  @HttpCode(200)
  async query(@Ctx() ctx: RequestContext, @Body() body: DataPlaneRequest, @Res() reply: FastifyReply) {
    const response = await this.dataPlane.handle(ctx, body);
    // Its refusals are audited by the data plane itself.
    reply.request.auditedByDataPlane = true;
    reply.status(response.status).header('cache-control', 'no-store');
    if ('json' in response) return reply.type('application/json; charset=utf-8').send(response.json);
    return reply.send(response.body);
  }
}
