import { Controller, Get, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Public } from '@broker/core';
import { REGISTER_PAGE_CSP, renderRegisterPage } from './register-page';
import { RegisterService } from './register.service';

/**
 * The public register (DESIGN §4.3, §4.4): `GET /api/register` (JSON) and `GET /register` (a page),
 * without sign-in. Both answer from the register cached until the audit head moves, with an ETag,
 * so a scraper that sends If-None-Match gets 304 while nothing changed.
 */
@Controller()
export class RegisterController {
  constructor(private readonly registers: RegisterService) {}

  @Public()
  @Get('api/register')
  async json(@Req() request: FastifyRequest, @Res() reply: FastifyReply) {
    const entry = await this.registers.current();
    const etag = `"register-${entry.key}"`;
    void reply.header('etag', etag).header('cache-control', 'public, max-age=10');
    if (request.headers['if-none-match'] === etag) return reply.status(304).send();
    return reply.type('application/json; charset=utf-8').send(entry.json);
  }

  @Public()
  @Get('register')
  async page(@Req() request: FastifyRequest, @Res() reply: FastifyReply) {
    const entry = await this.registers.current();
    const etag = `"register-page-${entry.key}"`;
    void reply
      .header('etag', etag)
      .header('cache-control', 'public, max-age=10')
      .header('content-security-policy', REGISTER_PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    if (request.headers['if-none-match'] === etag) return reply.status(304).send();
    let html = entry.html;
    if (!html) {
      html = renderRegisterPage(entry.register);
      this.registers.rememberHtml(entry.key, html);
    }
    return reply.type('text/html; charset=utf-8').send(html);
  }
}
