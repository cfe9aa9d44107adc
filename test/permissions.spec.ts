import { ModulesContainer } from '@nestjs/core';
import { GraphQLSchemaHost } from '@nestjs/graphql';
import { ALLOW_KEY, PUBLIC_KEY } from '@broker/core';
import { TestBroker } from '@broker/testing';

type Declaration = string[] | 'PUBLIC' | 'UNDECLARED';

/** Every GraphQL operation and HTTP route of the running broker, with who may call it. */
function declarations(broker: TestBroker) {
  const operations: Record<string, Declaration> = {};
  const routes: Record<string, Declaration> = {};
  const declared = (handler: object, owner: object): Declaration => {
    if (Reflect.getMetadata(PUBLIC_KEY, handler) || Reflect.getMetadata(PUBLIC_KEY, owner)) return 'PUBLIC';
    const roles = (Reflect.getMetadata(ALLOW_KEY, handler) ?? Reflect.getMetadata(ALLOW_KEY, owner)) as
      string[] | undefined;
    return roles ? [...roles].sort() : 'UNDECLARED';
  };
  for (const module of broker.app.get(ModulesContainer).values()) {
    for (const wrapper of [...module.providers.values(), ...module.controllers.values()]) {
      const instance = wrapper.instance as object | undefined;
      if (!instance || typeof instance !== 'object' || !wrapper.metatype) continue;
      const proto = Object.getPrototypeOf(instance) as object;
      for (const name of Object.getOwnPropertyNames(proto)) {
        // Read descriptors, not properties: some providers have getters that must not run here.
        const handler = Object.getOwnPropertyDescriptor(proto, name)?.value as unknown;
        if (name === 'constructor' || typeof handler !== 'function') continue;
        const type = Reflect.getMetadata('graphql:resolver_type', handler) as string | undefined;
        if (type === 'Query' || type === 'Mutation') {
          const field = (Reflect.getMetadata('graphql:resolver_name', handler) as string | undefined) ?? name;
          operations[`${type}.${field}`] = declared(handler, wrapper.metatype);
        }
        const method = Reflect.getMetadata('method', handler) as number | undefined;
        const path = Reflect.getMetadata('path', handler) as string | undefined;
        if (method !== undefined && path !== undefined) {
          const base = (Reflect.getMetadata('path', wrapper.metatype) as string | undefined) ?? '';
          const verb = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'ALL', 'OPTIONS', 'HEAD'][method];
          routes[`${verb} /${[base, path].filter((p) => p && p !== '/').join('/')}`] = declared(
            handler,
            wrapper.metatype,
          );
        }
      }
    }
  }
  return { operations, routes };
}

describe('permissions: every operation declares who may call it', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'permissions' });
  });
  afterAll(() => broker.close());

  it('finds a declaration on every Query and Mutation field of the schema', () => {
    const { operations } = declarations(broker);
    const schema = broker.app.get(GraphQLSchemaHost).schema;
    const fields = [
      ...Object.keys(schema.getQueryType()?.getFields() ?? {}).map((f) => `Query.${f}`),
      ...Object.keys(schema.getMutationType()?.getFields() ?? {}).map((f) => `Mutation.${f}`),
    ];
    expect(fields.length).toBeGreaterThan(5);
    const missing = fields.filter((f) => !operations[f] || operations[f] === 'UNDECLARED');
    expect(missing).toEqual([]);
  });

  // Review a change here as a change of permissions.
  it('matches the reviewed permission table', () => {
    const ALL = ['ANALYST', 'AUDITOR', 'OPERATOR', 'STEWARD'];
    const { operations, routes } = declarations(broker);
    expect(operations).toEqual({
      'Query.me': ALL,
      'Query.agencies': ALL,
      'Query.purposes': ALL,
      'Query.datasets': ALL,
      'Query.dataset': ALL,
      'Mutation.createAgency': ['OPERATOR'],
      // Which users each role creates or deactivates is the control ability's (DESIGN §4.1 "Users").
      'Mutation.createUser': ['OPERATOR', 'STEWARD'],
      'Query.users': ['AUDITOR', 'OPERATOR', 'STEWARD'],
      'Mutation.deactivateUser': ['AUDITOR', 'OPERATOR', 'STEWARD'],
      // Any user, for itself; with `me`, the only operations an invitation key may call.
      'Mutation.rotateApiKey': ALL,
      'Mutation.definePurpose': ['OPERATOR'],
      'Mutation.registerDataset': ['STEWARD'],
      'Mutation.ingestRecords': ['STEWARD'],
      'Mutation.recordConsent': ['STEWARD'],
      'Query.auditEvents': ALL,
      'Query.verifyAuditChain': ['AUDITOR', 'OPERATOR', 'STEWARD'],
      'Query.agreements': ALL,
      'Query.agreement': ALL,
      'Mutation.proposeAgreement': ['STEWARD'],
      'Mutation.amendAgreement': ['STEWARD'],
      // An AUDITOR approves for its oversight agency, and only versions that need oversight.
      'Mutation.approveAgreement': ['AUDITOR', 'STEWARD'],
      'Mutation.declineAgreement': ['AUDITOR'],
      // The service narrows these to the recipient's stewards and the provider's stewards.
      'Mutation.attestDestruction': ['STEWARD'],
      'Mutation.updateDataset': ['STEWARD'],
      // Exactly who may change the retention (updateDataset): the service narrows it to the provider's.
      'Query.retentionPreview': ['STEWARD'],
      'Mutation.revokeAgreement': ['STEWARD'],
      // An AUDITOR previews what it is asked to sign off, without record counts.
      'Query.previewAgreement': ['AUDITOR', 'STEWARD'],
      'Query.auditAccessSeries': ALL,
      'Query.auditRefusalSeries': ALL,
      'Query.linkageRun': ['AUDITOR', 'OPERATOR'],
      'Query.linkageRuns': ['AUDITOR', 'OPERATOR'],
      'Mutation.startLinkage': ['OPERATOR'],
      'Query.linkageReviewPairs': ['AUDITOR', 'OPERATOR', 'STEWARD'],
      'Query.linkageReviewPairSide': ['STEWARD'],
      'Mutation.decideLinkagePair': ['OPERATOR', 'STEWARD'],
      'Query.subjectAccessReport': ['STEWARD'],
    });
    expect(routes).toEqual({
      'GET /health': 'PUBLIC',
      'GET /metrics': 'PUBLIC',
      'POST /api/datasets/:id/records': ['STEWARD'],
      // Everyone may ask; the data plane itself answers only analysts, in GraphQL's shape.
      'POST /data/graphql': ALL,
      // The same for exports: the data plane answers only analysts (a refusal is audited as EXPORT).
      'POST /data/export': ALL,
      // The admin UI's static files; the UI signs in with an API key and calls the APIs above.
      'GET /admin': 'PUBLIC',
      'GET /admin/*': 'PUBLIC',
      // The public register (DESIGN §4.4): agreements in force and counts, never a record or a user.
      'GET /api/register': 'PUBLIC',
      'GET /register': 'PUBLIC',
      // GraphiQL's page, where a browser's GET /graphql or /data/graphql is routed; it signs in with
      // an API key and sends it with every request to the endpoints above.
      'GET /graphiql': 'PUBLIC',
    });
  });

  it('denies an operation without a declaration (deny by default)', async () => {
    const { RolesGuard } = await import('@broker/auth');
    const { Reflector } = await import('@nestjs/core');
    const guard = new RolesGuard(new Reflector());
    const undeclared = () => undefined;
    class Bare {}
    const context = {
      getHandler: () => undeclared,
      getClass: () => Bare,
      getType: () => 'http',
      switchToHttp: () => ({ getRequest: () => ({ principal: { role: 'OPERATOR' } }) }),
    };
    expect(() => guard.canActivate(context as never)).toThrow('Not allowed');
  });
});
