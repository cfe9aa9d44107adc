import { Controller, Get, Headers, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { BROKER_CONFIG, type BrokerConfig } from '../config/broker-config';
import { Public } from '../http/public.decorator';
import { MetricsService } from './metrics.service';

/** Compares secrets in constant time. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** `GET /metrics` in Prometheus text format; when `METRICS_TOKEN` is set, scrapers must present it. */
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
  ) {}

  @Public()
  @Get()
  async metricsText(@Headers('authorization') authorization: string | undefined, @Res() reply: FastifyReply) {
    if (
      this.config.METRICS_TOKEN &&
      !sameSecret(authorization ?? '', `Bearer ${this.config.METRICS_TOKEN}`)
    ) {
      return reply.status(401).send({ error: 'metrics token required', code: 'UNAUTHENTICATED' });
    }
    const body = await this.metrics.registry.metrics();
    return reply.status(200).header('content-type', this.metrics.registry.contentType).send(body);
  }
}
