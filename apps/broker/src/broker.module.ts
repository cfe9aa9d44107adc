import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { GraphQLModule } from '@nestjs/graphql';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import type { Logger } from 'pino';
import { AuthModule } from '@broker/auth';
import { type BrokerConfig, BrokerErrorFilter, CoreModule, mercuriusErrorFormatter } from '@broker/core';
import { RegistryModule } from '@broker/registry';

/** The broker process: control-plane GraphQL, REST ingest, health and metrics. */
@Module({})
export class BrokerModule {
  static forRoot(config: BrokerConfig, logger: Logger): DynamicModule {
    return {
      module: BrokerModule,
      imports: [
        CoreModule.forRoot({ config, logger }),
        AuthModule,
        GraphQLModule.forRoot<MercuriusDriverConfig>({
          driver: MercuriusDriver,
          path: '/graphql',
          autoSchemaFile: true,
          sortSchema: true,
          graphiql: false,
          jit: 1,
          context: (request: unknown, reply: unknown) => ({ req: request, reply }),
          errorFormatter: mercuriusErrorFormatter(logger),
        }),
        RegistryModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: BrokerErrorFilter }],
    };
  }
}
