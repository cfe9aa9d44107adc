import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomBytes } from 'node:crypto';
import { DataSource as DataSourceToken } from 'typeorm';
import { type BrokerOptions, createBroker } from '../../../apps/broker/src/bootstrap';
import { type BrokerConfig, createLogger, dropDatabase, loadConfig } from '@broker/core';
import { createTestDatabase } from './test-database';

/** The answer of a GraphQL request: the parsed body and the HTTP status. */
export interface GqlResult<T = Record<string, unknown>> {
  status: number;
  data: T | null;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; [k: string]: unknown } }[];
}

/**
 * A broker on a fresh database of its own, driven in-process through fastify's `inject`.
 *
 * @example
 * const broker = await TestBroker.start();
 * const sheriff = await broker.createAgency('Sheriff');
 * const steward = await broker.createUser({ agencyId: sheriff.id, role: 'STEWARD' });
 * const res = await broker.gql(steward.apiKey, '{ me { role } }');
 */
export class TestBroker {
  private constructor(
    readonly app: NestFastifyApplication,
    readonly config: BrokerConfig,
    readonly operatorKey: string,
  ) {}

  /** Starts a broker on a new database cloned from the migrated template. */
  static async start(env: Record<string, string> = {}, options: BrokerOptions = {}): Promise<TestBroker> {
    const databaseUrl = env.DATABASE_URL ?? (await createTestDatabase(env.LABEL ?? 'test'));
    const operatorKey = env.BROKER_BOOTSTRAP_TOKEN ?? `op_${randomBytes(24).toString('base64url')}`;
    const config = loadConfig({
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      DATABASE_URL: databaseUrl,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: `test_${randomBytes(4).toString('hex')}`,
      BROKER_BOOTSTRAP_TOKEN: operatorKey,
      ...env,
    });
    const app = await createBroker(config, createLogger(config.LOG_LEVEL), options);
    return new TestBroker(app, config, operatorKey);
  }

  /** The fastify instance, for `inject`. */
  get http() {
    return this.app.getHttpAdapter().getInstance();
  }

  /** Listens on a free loopback port (for a browser or another process) and returns the base URL. */
  async listen(): Promise<string> {
    // Once: a second call answers the address the first one listens on.
    if (!this.http.server.listening) await this.app.listen({ port: 0, host: '127.0.0.1' });
    const address = this.http.server.address();
    if (!address || typeof address === 'string') throw new Error('the broker is not listening on TCP');
    return `http://127.0.0.1:${address.port}`;
  }

  /** Sends a GraphQL request to `/graphql` (or `path`) with the given API key. */
  async gql<T = Record<string, any>>(
    apiKey: string | null,
    query: string,
    variables?: Record<string, unknown>,
    path = '/graphql',
  ): Promise<GqlResult<T>> {
    const response = await this.http.inject({
      method: 'POST',
      url: path,
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
      payload: { query, variables },
    });
    const body = JSON.parse(response.body) as Omit<GqlResult<T>, 'status'>;
    return { status: response.statusCode, ...body };
  }

  /** Like {@link gql} but fails the test on any error, returning `data`. */
  async gqlOk<T = Record<string, any>>(
    apiKey: string,
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<T> {
    const result = await this.gql<T>(apiKey, query, variables);
    if (result.errors?.length || !result.data) {
      throw new Error(`GraphQL request failed: ${JSON.stringify(result.errors)}`);
    }
    return result.data;
  }

  /** `verifyAuditChain` as an AUDITOR (`apiKey`) asks it. */
  async verifyAuditChain(
    apiKey: string,
  ): Promise<{ valid: boolean; checked: number; firstBrokenSeq: number | null }> {
    return (
      await this.gqlOk<{
        verifyAuditChain: { valid: boolean; checked: number; firstBrokenSeq: number | null };
      }>(apiKey, `{ verifyAuditChain { valid checked firstBrokenSeq } }`)
    ).verifyAuditChain;
  }

  /** The audit chain's head: the seq of its latest event. */
  async auditHeadSeq(): Promise<number> {
    return Number((await this.query<{ seq: string }>(`SELECT seq::text AS seq FROM audit_head`))[0].seq);
  }

  /** Creates an agency as the operator. */
  async createAgency(name: string, kind = 'agency'): Promise<{ id: string; name: string }> {
    const data = await this.gqlOk<{ createAgency: { id: string; name: string } }>(
      this.operatorKey,
      `mutation($input: CreateAgencyInput!) { createAgency(input: $input) { id name } }`,
      { input: { name, kind } },
    );
    return data.createAgency;
  }

  /**
   * Creates a user as DESIGN's "Users" rules allow, and returns its id and working API key:
   * OPERATORs and AUDITORs (in this broker's oversight agency unless `agencyId` names one) are
   * invited by the operator; an agency's first STEWARD is invited by the operator, and its other
   * STEWARDs and ANALYSTs are created by that first steward. Every invitation is rotated here, as its
   * owner would, so the key returned works at once.
   */
  async createUser(input: {
    agencyId?: string | null;
    role: string;
    email?: string;
  }): Promise<{ id: string; apiKey: string; email: string }> {
    const email = input.email ?? `${input.role.toLowerCase()}-${randomBytes(4).toString('hex')}@example.org`;
    const { role } = input;
    if (role === 'OPERATOR') return this.invite({ agencyId: null, role, email });
    if (role === 'AUDITOR') {
      return this.invite({ agencyId: input.agencyId ?? (await this.oversightAgency()), role, email });
    }
    if (!input.agencyId) throw new Error(`a ${role} needs an agencyId`);
    const agencyId = input.agencyId;
    // One first steward per agency, even when a test creates users of an agency concurrently.
    let first = this.firstStewards.get(agencyId);
    let created: { id: string; apiKey: string; email: string } | null = null;
    if (!first) {
      const invited = role === 'STEWARD' ? { email } : {};
      first = this.invite({ agencyId, role: 'STEWARD', email: invited.email ?? this.email('steward') });
      this.firstStewards.set(agencyId, first);
      if (role === 'STEWARD') created = await first;
    }
    if (created) return created;
    const steward = await first;
    return this.createAs(steward.apiKey, { agencyId, role, email });
  }

  /** The first steward of an agency (invited by the operator if it has none yet). */
  async stewardOf(agencyId: string): Promise<{ id: string; apiKey: string; email: string }> {
    const known = this.firstStewards.get(agencyId);
    if (known) return known;
    return this.createUser({ agencyId, role: 'STEWARD' });
  }

  /** Creates a user with the given key (a steward, or the operator) without rotating anything. */
  async createAs(
    apiKey: string,
    input: { agencyId?: string | null; role: string; email?: string },
  ): Promise<{ id: string; apiKey: string; email: string }> {
    const email = input.email ?? this.email(input.role);
    const data = await this.gqlOk<{ createUser: { user: { id: string }; apiKey: string } }>(
      apiKey,
      `mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } apiKey } }`,
      { input: { agencyId: input.agencyId ?? null, role: input.role, email } },
    );
    return { id: data.createUser.user.id, apiKey: data.createUser.apiKey, email };
  }

  /** Rotates a key (an invitation becomes its owner's key) and returns the new one. */
  async rotate(apiKey: string): Promise<string> {
    const data = await this.gqlOk<{ rotateApiKey: { apiKey: string } }>(
      apiKey,
      `mutation { rotateApiKey { apiKey } }`,
    );
    return data.rotateApiKey.apiKey;
  }

  /** The agency of kind `oversight` this broker's factory AUDITORs belong to, created once. */
  oversightAgency(): Promise<string> {
    this.oversight ??= this.createAgency(
      `Oversight board ${randomBytes(3).toString('hex')}`,
      'oversight',
    ).then((a) => a.id);
    return this.oversight;
  }

  private readonly firstStewards = new Map<string, Promise<{ id: string; apiKey: string; email: string }>>();
  private oversight?: Promise<string>;

  private email(role: string): string {
    return `${role.toLowerCase()}-${randomBytes(4).toString('hex')}@example.org`;
  }

  /** The operator invites a user; the invitation is rotated as its owner would. */
  private async invite(input: { agencyId: string | null; role: string; email: string }) {
    const invited = await this.createAs(this.operatorKey, input);
    return { ...invited, apiKey: await this.rotate(invited.apiKey) };
  }

  /**
   * The two parties of a data-sharing agreement as most tests need them: a provider and a recipient
   * agency, each with its first steward, an analyst of the recipient, and the purposes defined.
   */
  async sharingParties(provider: string, recipient: string, ...purposes: string[]) {
    const providerAgency = await this.createAgency(provider);
    const recipientAgency = await this.createAgency(recipient);
    const providerSteward = await this.createUser({ agencyId: providerAgency.id, role: 'STEWARD' });
    const recipientSteward = await this.createUser({ agencyId: recipientAgency.id, role: 'STEWARD' });
    const analyst = await this.createUser({ agencyId: recipientAgency.id, role: 'ANALYST' });
    await this.definePurposes(...purposes);
    return { providerAgency, recipientAgency, providerSteward, recipientSteward, analyst };
  }

  /** Defines purposes as the operator. */
  async definePurposes(...codes: string[]): Promise<void> {
    for (const code of codes) {
      await this.gqlOk(
        this.operatorKey,
        `mutation($input: DefinePurposeInput!) { definePurpose(input: $input) { code } }`,
        { input: { code, description: `Test purpose ${code}` } },
      );
    }
  }

  /**
   * Proposes an agreement as one party's steward and approves version 1 as the other's, and as the
   * oversight board's AUDITOR where the version needs oversight; returns its id. A version needing
   * oversight gets a community-benefit statement and field justifications unless it carries its own.
   */
  async activateAgreement(
    proposerKey: string,
    approverKey: string,
    input: Record<string, unknown>,
  ): Promise<string> {
    const { proposeAgreement } = await this.gqlOk<{ proposeAgreement: { id: string } }>(
      proposerKey,
      `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`,
      { input: withOversightText(input) },
    );
    const { approveAgreement } = await this.gqlOk<{
      approveAgreement: { oversightRequired: boolean; inForceVersion: number | null };
    }>(
      approverKey,
      `mutation($id: ID!) { approveAgreement(id: $id, version: 1) { oversightRequired inForceVersion } }`,
      { id: proposeAgreement.id },
    );
    if (approveAgreement.oversightRequired && approveAgreement.inForceVersion === null) {
      await this.oversightApprove(proposeAgreement.id, 1);
    }
    return proposeAgreement.id;
  }

  private boardAuditor?: Promise<{ agencyId: string; id: string; apiKey: string }>;

  /** The AUDITOR of this broker's oversight board (its agency of kind `oversight`), created once. */
  oversightAuditor(): Promise<{ agencyId: string; id: string; apiKey: string }> {
    this.boardAuditor ??= (async () => {
      const agencyId = await this.oversightAgency();
      const auditor = await this.createUser({ agencyId, role: 'AUDITOR' });
      return { agencyId, ...auditor };
    })();
    return this.boardAuditor;
  }

  /** Approves a version as the oversight board's AUDITOR. */
  async oversightApprove(agreementId: string, version: number): Promise<void> {
    const auditor = await this.oversightAuditor();
    await this.gqlOk(
      auditor.apiKey,
      `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { id } }`,
      {
        id: agreementId,
        v: version,
      },
    );
  }

  /** Registers a dataset as the given steward. */
  async registerDataset(
    stewardKey: string,
    input: Record<string, unknown>,
  ): Promise<{ id: string; slug: string }> {
    const data = await this.gqlOk<{ registerDataset: { id: string; slug: string } }>(
      stewardKey,
      `mutation($input: RegisterDatasetInput!) { registerDataset(input: $input) { id slug } }`,
      { input },
    );
    return data.registerDataset;
  }

  /** Posts a body to the REST ingest route. */
  async upload(apiKey: string, datasetId: string, contentType: string, body: string | Buffer) {
    const response = await this.http.inject({
      method: 'POST',
      url: `/api/datasets/${datasetId}/records`,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': contentType },
      payload: body,
    });
    return { status: response.statusCode, body: JSON.parse(response.body) as Record<string, any> };
  }

  /** Runs SQL on the broker's database (assertions on what was or was not written). */
  query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.app.get(DataSourceToken).query(sql, params);
  }

  /**
   * A second broker process on the same database and Redis, as behind a load balancer; `env` sets
   * more of its configuration (the first one's budgets, say).
   */
  startAnother(env: Record<string, string> = {}): Promise<TestBroker> {
    return TestBroker.start({
      ...env,
      DATABASE_URL: this.config.DATABASE_URL,
      BROKER_BOOTSTRAP_TOKEN: this.operatorKey,
      QUEUE_PREFIX: this.config.QUEUE_PREFIX,
    });
  }

  /** Stops the broker and drops its database. */
  async close() {
    await this.app.close();
    await dropDatabase(this.config.DATABASE_URL);
  }

  /** Stops the broker, leaving its database to the others sharing it. */
  async stop() {
    await this.app.close();
  }
}

/**
 * An agreement input with a community-benefit statement and a justification on every granted field,
 * where it has none of its own: what a version under oversight must carry to be proposed.
 */
export function withOversightText(input: Record<string, unknown>): Record<string, unknown> {
  const grants = Array.isArray(input.grants) ? (input.grants as Record<string, unknown>[]) : null;
  return {
    communityBenefit: 'Test fixture: the county learns whether its programmes reduce reoffending.',
    ...input,
    ...(grants && {
      grants: grants.map((grant) => ({
        ...grant,
        fields: Array.isArray(grant.fields)
          ? (grant.fields as Record<string, unknown>[]).map((f) => ({
              justification: 'Test fixture: the evaluation needs it at this precision.',
              ...f,
            }))
          : grant.fields,
      })),
    }),
  };
}
