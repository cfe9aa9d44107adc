import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { Readable } from 'node:stream';
import {
  AuditAction,
  ReleaseIndexer,
  ReleaseStaging,
  ReleaseWithdrawnError,
  type StagedRelease,
} from '@broker/audit';
import type { RequestContext } from '@broker/auth';
import { BROKER_CONFIG, type BrokerConfig, LOGGER } from '@broker/core';
import { PolicyError, refusal, refusalOf } from '@broker/policy';
import { precheck } from './authorise';
import type { DataPlaneEvent } from './audit-batcher';
import { DataPlaneRecorder } from './data-plane-recorder';
import {
  DataPlaneService,
  KeyStoppedError,
  PolicyMovingError,
  MAX_POLICY_LOADS,
  inWindow,
  policyMoved,
  releaseCondition,
} from './data-plane.service';
import type { Decision } from './decide';
import { type ExportFormat, exportSql, formulaHandling } from './export-sql';
import { exportStatus, exportStream } from './export-stream';
import { exportColumns, fragmentsOf } from './operation-fields';
import type { DataPlaneRefusal, DataPlaneRequest, DataPlaneResponse } from './plan';
import { failureResponse, timeLimitRefusal } from './response';

/** What an export answers: a JSON refusal or failure, or its rows as a stream. */
export type ExportResponse =
  | { kind: 'json'; response: DataPlaneResponse }
  | { kind: 'stream'; contentType: string; rowCount: number; stream: Readable };

/** Rows an export releases from which its ids are indexed (and merged) as soon as it has left. */
const MERGE_RELEASE_INDEX_AFTER = 100_000;

/** Exports of the data plane: one row root field's rows as CSV or NDJSON, recorded like a page. */
@Injectable()
export class DataExportService {
  constructor(
    private readonly dataPlane: DataPlaneService,
    private readonly recorder: DataPlaneRecorder,
    private readonly releases: ReleaseIndexer,
    private readonly staging: ReleaseStaging,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
  ) {}

  /**
   * An export (`POST /data/export`): every row that the request's one row root field selects, under
   * the same decision as a page. In the request's snapshot, the rows are counted (and the list of
   * their ids staged by PostgreSQL for the release record: it never passes through the broker's
   * memory), the EXPORT event with the total is committed to the audit log, and only then is the
   * first byte streamed, by COPY in the same snapshot, as fast as the client reads. A refusal is the
   * JSON refusal of `/data/graphql` with a 4xx status, audited as an EXPORT. `formulas` is the
   * request's `formulas` query parameter as given (see {@link formulaHandling}).
   */
  async export(
    ctx: RequestContext,
    request: DataPlaneRequest,
    format: ExportFormat,
    formulas?: unknown,
    redecided = 0,
  ): Promise<ExportResponse> {
    const refuse = async (refusals: DataPlaneRefusal[]): Promise<ExportResponse> => ({
      kind: 'json',
      response: await this.recorder.refused(ctx, refusals, exportStatus(refusals), AuditAction.EXPORT),
    });
    // Audited as every refusal is, as on /data/graphql.
    const invalid = (message: string): Promise<ExportResponse> => refuse([refusal('INVALID', message)]);
    if (!(await this.dataPlane.verify(ctx)))
      return { kind: 'json', response: this.dataPlane.unauthenticated() };
    const early = precheck(ctx.principal, request);
    if (early) return early.refusals ? refuse(early.refusals) : invalid(early.message);
    const { handling, message } = formulaHandling(formulas, format);
    if (message !== undefined) return invalid(message);
    const agencyId = ctx.principal.agencyId!;
    // When each step ended, in ms since the export began: logged with the export once it is sent.
    const began = performance.now();
    const steps: Record<string, number> = {};
    const step = (name: string) => (steps[name] = Math.round(performance.now() - began));
    let opened: Awaited<ReturnType<DataPlaneService['begin']>>;
    try {
      opened = await this.dataPlane.begin(ctx.principal);
    } catch (error) {
      if (error instanceof PolicyMovingError) return { kind: 'json', response: policyMoved() };
      if (error instanceof KeyStoppedError)
        return { kind: 'json', response: this.dataPlane.unauthenticated() };
      throw error;
    }
    const { tx, policy, stamp } = opened;
    let decision: Decision;
    try {
      decision = this.dataPlane.decide(policy, request);
    } catch (error) {
      await tx.rollback();
      throw error;
    }
    if (decision.kind !== 'run') {
      await tx.rollback();
      return decision.kind === 'invalid' ? invalid(decision.message) : refuse(decision.refusals);
    }
    const [root, ...more] = decision.plans;
    if (!root || more.length || root.kind !== 'ROWS') {
      await tx.rollback();
      return invalid('An export takes an operation with exactly one row root field');
    }
    // Its records have the keys, in the order, of its pages' nodes (aliases, fragments, directives).
    const { operation, document, variableValues } = decision;
    const columns = exportColumns(operation, fragmentsOf(document), variableValues, root.responseKey);
    if (!columns) {
      await tx.rollback();
      return invalid("An export's nodes select one or more released names, and nothing else");
    }
    const plan = { ...root, columns };
    let statements: ReturnType<typeof exportSql>;
    let rowCount: number;
    // The list of the rows' ids, staged in the database from this snapshot when releases are recorded.
    let staged: StagedRelease | undefined;
    // Unavailable, not failed: the caller may retry, and nothing left.
    const notStarted = async (error: unknown): Promise<ExportResponse> => {
      await tx.rollback();
      if (staged) await this.staging.discard(staged.staged);
      this.logger.error({ err: error, requestId: ctx.requestId }, 'export not started: nothing released');
      return {
        kind: 'json',
        response: failureResponse('The export could not be started, so nothing was released', 503),
      };
    };
    try {
      statements = exportSql(plan, format, agencyId, this.dataPlane.hashes, handling);
      this.dataPlane.lookedUp(statements);
      if (this.config.RECORD_RELEASES) {
        staged = await this.staging.stage(tx, plan.shape.id, statements.rids);
        rowCount = staged.rowCount;
      } else {
        [{ n: rowCount }] = await tx.query<{ n: number }>(statements.count.text, statements.count.values);
      }
      step(staged ? 'staged' : 'counted');
    } catch (error) {
      // A refusal (a statement that is not allowed, or too costly to answer), else a failure.
      const refusal = error instanceof PolicyError ? refusalOf(error) : timeLimitRefusal(error);
      if (!refusal) return notStarted(error);
      await tx.rollback();
      return refuse([refusal]);
    }
    try {
      // The COPY's values, and its query parsed and planned (no row read): a statement PostgreSQL
      // refuses is found here, before anything is recorded or sent, not after the first byte.
      const { settings, probe } = statements.rows;
      await tx.query(settings.text, settings.values);
      await tx.query(probe);
      step('planned');
    } catch (error) {
      return notStarted(error);
    }
    // The agreement's window ended while the rows were counted (or, below, it ended, an agreement
    // changed or a key was revoked before the release was recorded): nothing recorded or sent; the
    // request is decided again, now, and refused as any request past the window is.
    const again = async (): Promise<ExportResponse> => {
      await tx.rollback();
      if (staged) await this.staging.discard(staged.staged);
      if (redecided >= MAX_POLICY_LOADS) return { kind: 'json', response: policyMoved() };
      return this.export(ctx, request, format, formulas, redecided + 1);
    };
    if (!inWindow([plan], new Date())) return again();
    const event: DataPlaneEvent = {
      actorUserId: ctx.principal.userId,
      actorAgencyId: agencyId,
      action: AuditAction.EXPORT,
      decision: 'ALLOW',
      purpose: plan.purpose,
      datasetId: plan.shape.id,
      agreementId: plan.agreement.id,
      agreementVersion: plan.agreement.version,
      fields: plan.fields,
      rowCount,
      onlyIf: releaseCondition([plan], stamp, ctx.principal),
    };
    if (staged && rowCount > 0) {
      event.release = { datasetId: plan.shape.id, staged: staged.staged };
      event.details = { releaseDigest: staged.digest };
    } else if (staged) {
      await this.staging.discard(staged.staged);
    }
    try {
      // The snapshot stays open: the rows streamed are the rows counted and recorded.
      await this.recorder.append([event]);
      step('recorded');
    } catch (error) {
      if (error instanceof ReleaseWithdrawnError) return again();
      return notStarted(error);
    }
    // Operators see how long an export took, and where: counting or staging its list, planning its
    // COPY, recording its release (all before the first byte), and sending its rows.
    const sent = () => {
      step('sent');
      this.logger.info(
        { requestId: ctx.requestId, rows: rowCount, format, formulas: handling, ms: steps },
        'export sent',
      );
    };
    const merge = rowCount >= MERGE_RELEASE_INDEX_AFTER;
    const stream = exportStream(
      tx,
      statements.rows.copy,
      statements.header,
      (error) =>
        this.logger.error(
          { err: error, requestId: ctx.requestId },
          'export failed midway: the stream was cut',
        ),
      sent,
    );
    // The release's ids are copied into the index that subject access searches once the stream is
    // over, sent or cut (a large list merged too), off any request's path: not while the COPY runs.
    if (event.release)
      stream.once('close', () => (merge ? this.mergeReleaseIndex() : this.releases.schedule()));
    return {
      kind: 'stream',
      contentType: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      rowCount,
      stream,
    };
  }

  /** A large release's ids: copied into the release index and merged now, off any request's path. */
  private mergeReleaseIndex(): void {
    const started = Date.now();
    this.releases
      .catchUp()
      .then(() => this.releases.merge())
      .then(
        (pages) =>
          this.logger.info({ pages, ms: Date.now() - started }, 'release index merged after an export'),
        (error: unknown) =>
          this.logger.warn({ err: error }, 'release index merge failed: autovacuum will do it'),
      );
  }
}
