import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { GraphQLModule } from '@nestjs/graphql';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import type { GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { AuditModule } from '@broker/audit';
import { AuthModule } from '@broker/auth';
import {
  type BrokerConfig,
  ContractErrorFilter,
  CoreModule,
  DateTimeScalar,
  mercuriusErrorFormatter,
} from '@broker/core';
import { AgreementsModule } from '@broker/agreements';
import { DataPlaneModule } from '@broker/data-plane';
import { JobsModule } from '@broker/jobs';
import { LinkageModule } from '@broker/linkage';
import { RegistryModule } from '@broker/registry';
import { AdminUiModule } from './admin-ui.module';
import { CONTROL_PLANE_LIMIT_RULES, CONTROL_PLANE_MAX_TOKENS } from './control-plane-limits';
import { BrokerMetricsCollector } from './broker-metrics';

/** Describes the control plane's root types for introspection (GraphiQL's documentation explorer). */
function describeRootTypes(schema: GraphQLSchema): GraphQLSchema {
  const query = schema.getQueryType();
  if (query) {
    query.description =
      'The control plane: agencies, users, purposes, the dataset catalog, agreements, the audit log and ' +
      'linkage runs, each as far as your role and agency may see. Records are read on /data/graphql.';
  }
  const mutation = schema.getMutationType();
  if (mutation) {
    mutation.description =
      'Changes to the control plane; each declares the roles that may call it, and every change is an ' +
      'audit event.';
  }
  return schema;
}

/** The broker process: control-plane GraphQL, REST ingest, health, metrics and the admin UI. */
@Module({})
export class BrokerModule {
  static forRoot(config: BrokerConfig, logger: Logger, adminUiDir?: string): DynamicModule {
    return {
      module: BrokerModule,
      imports: [
        CoreModule.forRoot({ config, logger }),
        AuthModule,
        AuditModule,
        GraphQLModule.forRoot<MercuriusDriverConfig>({
          driver: MercuriusDriver,
          path: '/graphql',
          autoSchemaFile: true,
          sortSchema: true,
          // Every Date, explicit or inferred, is the strict DateTime (libs/core/src/graphql/date-time.ts).
          buildSchemaOptions: { scalarsMap: [{ type: () => Date, scalar: DateTimeScalar }] },
          graphiql: false,
          // graphql-jit skips default values of nested input fields in variables; the control plane
          // does not need its speed.
          jit: 0,
          // Limits are checked on the document before anything runs (control-plane-limits.ts).
          validationRules: CONTROL_PLANE_LIMIT_RULES,
          graphql: { parseOptions: { maxTokens: CONTROL_PLANE_MAX_TOKENS } },
          context: (request: unknown, reply: unknown) => ({ req: request, reply }),
          errorFormatter: mercuriusErrorFormatter(logger),
          // The root types belong to no library: their descriptions are given here.
          transformSchema: describeRootTypes,
        }),
        RegistryModule,
        AgreementsModule,
        DataPlaneModule,
        JobsModule.forRoot(config, { processors: false }),
        LinkageModule.forRoot({ api: true, processors: false }),
        AdminUiModule.forRoot(adminUiDir),
      ],
      providers: [{ provide: APP_FILTER, useClass: ContractErrorFilter }, BrokerMetricsCollector],
    };
  }
}
