import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthHook } from './auth.hook';
import { AuthService } from './auth.service';
import { RolesGuard } from './auth.guard';

/** API keys, the request hook that authenticates, and the guard that enforces `@Allow`. */
@Global()
@Module({
  providers: [AuthService, AuthHook, { provide: APP_GUARD, useClass: RolesGuard }],
  exports: [AuthService, AuthHook],
})
export class AuthModule {}
