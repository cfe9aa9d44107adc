import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { AuditAction, AuditService, auditActor } from '@broker/audit';
import { type RequestContext, asSubject, authorize } from '@broker/auth';
import { badInput, BrokerError, conflict, Database, ErrorCode, LOGGER, quoteIdent } from '@broker/core';
import { isUuid } from '../agency/agency.service';
import { isUniqueViolation } from '../registry-errors';
import { type DatasetDefinitionInput, type FieldDefinition, validateDefinition } from './dataset-schema';
import { classificationProblem } from '@broker/policy';
import {
  type DatasetRetention,
  requireValidRetention,
  retentionAsked,
  validateRetention,
} from './dataset-retention';
import { DatasetEntity, DatasetFieldEntity } from './dataset.entity';
import { RECORDS_SCHEMA, createRecordTableSql, recordConsentAttach } from './record-table';
import {
  type IndexDemand,
  type IndexOutcome,
  POPULATION_INDEX_MARK,
  type RecordIndex,
  baseRecordIndexes,
  buildRecordIndex,
  indexProblems,
  populationIndexes,
  recordIndex,
  recordIndexSql,
  unindexablePredicates,
} from './record-indexes';

/** A dataset as ingestion needs it: the record table's columns in order. */
export interface WritableDataset {
  id: string;
  slug: string;
  keyField: string;
  fields: FieldDefinition[];
}

/** A dataset's shape as the policy compiler and the data plane read it. Datasets never change shape. */
export interface DatasetShapeRecord {
  id: string;
  slug: string;
  typeName: string;
  providerAgencyId: string;
  keyField: string;
  subjectField: string | null;
  fields: FieldDefinition[];
}

/** The shapes of datasets, each with its fields in their order. */
const SHAPES_OF = `
  SELECT d.id, d.slug, d.type_name AS "typeName", d.provider_agency_id AS "providerAgencyId",
         d.key_field AS "keyField", d.subject_field AS "subjectField",
         json_agg(json_build_object('name', f.name, 'type', f.type, 'classification', f.classification,
                                    'identity', f.identity, 'required', f.required, 'description', f.description)
                  ORDER BY f.position) AS fields
    FROM dataset d JOIN dataset_field f ON f.dataset_id = d.id
   WHERE d.id = ANY ($1::uuid[]) GROUP BY d.id`;

/**
 * The shapes of the datasets `ids` (unknown or malformed ids are left out), with the caller's `query`
 * (a transaction's, or a pool's): what policies are compiled against, the data plane's and the
 * lookup tables' sweeps alike ({@link DatasetService.shapes}, versionsInForce).
 */
export async function datasetShapes(
  query: <T>(sql: string, params?: unknown[]) => Promise<T[]>,
  ids: readonly string[],
): Promise<Map<string, DatasetShapeRecord>> {
  const valid = [...new Set(ids)].filter(isUuid);
  if (!valid.length) return new Map();
  const rows = await query<DatasetShapeRecord>(SHAPES_OF, [valid]);
  return new Map(rows.map((shape) => [shape.id, shape]));
}

/** How long the trial of a row filter's index waits for its record table (see unindexablePopulations). */
export const TRIAL_LOCK_TIMEOUT = '2s';
/** How long any statement of that trial may run. */
export const TRIAL_STATEMENT_TIMEOUT = '10s';
const LOCK_NOT_AVAILABLE = '55P03';
const QUERY_CANCELED = '57014';

/** The dataset registry: metadata for everyone, record tables created through one DDL path. */
@Injectable()
export class DatasetService {
  /**
   * How long a change waits for the record indexes it asked for ({@link ensureIndexesSoon}) before
   * answering; the build goes on after it.
   */
  indexWaitMs = INDEX_WAIT_MS;

  constructor(
    private readonly db: Database,
    @InjectRepository(DatasetEntity) private readonly datasets: Repository<DatasetEntity>,
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** The catalog: every dataset's metadata, by slug. */
  list(_ctx: RequestContext): Promise<DatasetEntity[]> {
    return this.datasets.find({
      relations: { fields: true },
      order: { slug: 'ASC', fields: { position: 'ASC' } },
    });
  }

  /** One dataset's metadata, or null. */
  async get(_ctx: RequestContext, id: string): Promise<DatasetEntity | null> {
    if (!isUuid(id)) return null;
    return this.datasets.findOne({
      where: { id },
      relations: { fields: true },
      order: { fields: { position: 'ASC' } },
    });
  }

  /** The shapes of the given datasets (unknown or malformed ids are left out). */
  shapes(ids: string[]): Promise<Map<string, DatasetShapeRecord>> {
    return datasetShapes((sql, params) => this.dataSource.query(sql, params), ids);
  }

  /** Registers a dataset of the caller's agency and creates its record table, in one transaction. */
  async register(
    ctx: RequestContext,
    input: DatasetDefinitionInput & { retentionDays?: number | null; retentionField?: string | null },
  ): Promise<DatasetEntity> {
    const { principal } = ctx;
    authorize(principal, 'create', asSubject('Dataset', { providerAgencyId: principal.agencyId }), 'Dataset');
    const result = validateDefinition(input);
    const problems = result.ok ? [] : [...result.problems];
    const retention = result.ok ? validateRetention(input, result.definition.fields) : null;
    if (result.ok) {
      // Identity roles fix a minimum classification, so oversight cannot be avoided by understating.
      result.definition.fields.forEach((f, i) => {
        const problem = classificationProblem(f);
        if (problem) problems.push({ path: `fields[${i}].classification`, message: problem });
      });
      if (retention && !retention.ok) problems.push(...retention.problems);
    }
    if (!result.ok || problems.length || !retention?.ok) {
      throw new BrokerError(
        ErrorCode.BAD_USER_INPUT,
        `The dataset definition is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
        { reason: 'INVALID_DATASET_DEFINITION', details: problems },
      );
    }
    const definition = result.definition;
    const declared = input.indexes ?? [];
    const indexErrors = indexProblems(definition.fields, declared);
    if (indexErrors.length) {
      throw new BrokerError(
        ErrorCode.BAD_USER_INPUT,
        `The dataset definition is invalid: ${indexErrors.join('; ')}`,
        {
          reason: 'INVALID_DATASET_DEFINITION',
        },
      );
    }
    try {
      const id = await this.db.transaction(
        async ({ manager }) => {
          const clash = await manager.findOne(DatasetEntity, {
            where: [{ slug: definition.slug }, { typeName: definition.typeName }],
          });
          if (clash) {
            throw conflict(
              clash.slug === definition.slug
                ? `A dataset with slug ${definition.slug} exists already`
                : `Slug ${definition.slug} would share the type name ${definition.typeName} with dataset ${clash.slug}`,
            );
          }
          const dataset = await manager.save(
            manager.create(DatasetEntity, {
              providerAgencyId: principal.agencyId!,
              slug: definition.slug,
              typeName: definition.typeName,
              title: definition.title,
              description: definition.description,
              keyField: definition.keyField,
              subjectField: definition.subjectField,
              retentionDays: retention.retention.retentionDays,
              retentionField: retention.retention.retentionField,
              declaredIndexes: withDeclared([], declared),
              createdBy: principal.userId,
            }),
          );
          await manager.insert(
            DatasetFieldEntity,
            definition.fields.map((f, position) => ({ ...f, datasetId: dataset.id, position })),
          );
          await manager.query(createRecordTableSql(definition));
          if (definition.subjectField) {
            // Its subject's consent on each record, for the indexes of populations that require it.
            const attach = recordConsentAttach(
              definition.slug,
              dataset.id,
              definition.subjectField,
              definition.keyField,
            );
            await manager.query(attach.sql, attach.params);
          }
          // The table is empty: its indexes cost nothing to build now.
          for (const fields of [...baseRecordIndexes(definition), ...declared]) {
            await manager.query(recordIndexSql(definition, fields));
          }
          await this.audit.append(
            {
              ...auditActor(ctx),
              action: AuditAction.DATASET_REGISTERED,
              decision: 'ALLOW',
              datasetId: dataset.id,
              fields: definition.fields.map((f) => f.name),
            },
            manager,
          );
          return dataset.id;
        },
        { carrier: ctx },
      );
      return (await this.get(ctx, id))!;
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`A dataset with slug ${definition.slug} exists already`);
      throw error;
    }
  }

  /**
   * Changes a dataset's title, description or retention (its fields, key and slug never change): a
   * steward of its provider. A field left out (or null) keeps its value; `retentionDays: 0` removes
   * retention. Audited as DATASET_UPDATED.
   */
  async update(
    ctx: RequestContext,
    id: string,
    input: {
      title?: string | null;
      description?: string | null;
      retentionDays?: number | null;
      retentionField?: string | null;
      indexes?: string[][] | null;
    },
  ): Promise<DatasetEntity> {
    const current = await this.requireWritable(ctx, id, 'update');
    const indexes = input.indexes ?? [];
    const indexErrors = indexProblems(current.fields, indexes);
    if (indexErrors.length) {
      throw new BrokerError(ErrorCode.BAD_USER_INPUT, `The indexes are invalid: ${indexErrors.join('; ')}`, {
        reason: 'INVALID_DATASET_DEFINITION',
      });
    }
    const existing = (await this.get(ctx, id))!;
    const title = input.title == null ? existing.title : input.title.trim();
    if (!title || title.length > 200) throw badInput('title must be 1 to 200 characters');
    const description =
      input.description === undefined ? existing.description : input.description?.trim() || null;
    if (description && description.length > 4000)
      throw badInput('description must be at most 4000 characters');
    const retention = requireValidRetention(retentionAsked(input, existing), current.fields);
    await this.db.transaction(
      async ({ manager }) => {
        await manager.query(
          `UPDATE dataset SET title = $2, description = $3, retention_days = $4, retention_field = $5,
                  declared_indexes = $6::jsonb WHERE id = $1`,
          [
            id,
            title,
            description,
            retention.retentionDays,
            retention.retentionField,
            JSON.stringify(withDeclared(existing.declaredIndexes ?? [], indexes)),
          ],
        );
        await this.audit.append(
          {
            ...auditActor(ctx),
            action: AuditAction.DATASET_UPDATED,
            decision: 'ALLOW',
            datasetId: id,
            reason:
              retention.retentionDays === null
                ? 'no retention'
                : `retention ${retention.retentionDays} days by ${retention.retentionField}`,
            ...(indexes.length ? { details: { indexes } } : {}),
          },
          manager,
        );
      },
      { carrier: ctx },
    );
    // After the commit, and concurrently: ingestion and queries go on while the indexes build.
    await this.ensureIndexesSoon([[id, indexes]], 'declared');
    return (await this.get(ctx, id))!;
  }

  /**
   * Builds indexes of a dataset's record table that do not exist yet (each a list of field names; see
   * recordIndex), without blocking ingestion or queries: what an agreement coming into force needs
   * (its row filter's fields), or what a steward declared. Not inside a transaction; an index a
   * failed build left invalid is built again (see buildRecordIndex). Resolves to what each index
   * needed; one that could not be built is `failed` (logged) and holds up none after it.
   */
  async ensureIndexes(
    datasetId: string,
    demands: readonly IndexDemand[],
  ): Promise<{ name: string; outcome: IndexOutcome | 'failed' }[]> {
    if (!demands.length) return [];
    const [shape] = (await this.shapes([datasetId])).values();
    if (!shape) return [];
    const known = new Set(shape.fields.map((f) => f.name));
    const indexes: RecordIndex[] = [];
    let declared: string[][] | undefined;
    for (const demand of demands) {
      if (!('predicate' in demand)) {
        if (demand.length && demand.every((name) => known.has(name)))
          indexes.push(recordIndex(shape, demand));
        continue;
      }
      // A population's indexes follow the declarations as they are now (the keeper's next pass
      // builds those of a declaration made since).
      declared ??= await this.declaredIndexesOf(shape);
      indexes.push(...populationIndexes(shape, demand.predicate, declared));
    }
    const done: { name: string; outcome: IndexOutcome | 'failed' }[] = [];
    for (const index of indexes) {
      if (done.some((d) => d.name === index.name)) continue;
      // One index that cannot be built (a population whose predicate PostgreSQL cannot store, say)
      // holds up no other: each is built, or counted as failed and tried again at the next check.
      let outcome: IndexOutcome | 'failed';
      try {
        outcome = await this.db.connection((client) => buildRecordIndex(client, index));
      } catch (error) {
        this.logger.warn({ index: index.name, err: error }, 'record index could not be built');
        outcome = 'failed';
      }
      done.push({ name: index.name, outcome });
    }
    return done;
  }

  /**
   * The predicates, among `predicates` (of populations of the dataset whose record table is `slug`:
   * see populationIndexes), that PostgreSQL cannot store as an index's predicate, so that no
   * population index of theirs could ever be built (see unindexablePredicates): what a proposal or
   * an amendment is refused for. Tried in a transaction that is always rolled back: nothing stays.
   *
   * The trial waits at most {@link TRIAL_LOCK_TIMEOUT} for the record table (a change of the dataset
   * holding it, say) and runs at most {@link TRIAL_STATEMENT_TIMEOUT}; past either, the change is
   * refused as a conflict to try again, and nothing was changed.
   */
  async unindexablePopulations(slug: string, predicates: readonly string[]): Promise<Set<string>> {
    if (!predicates.length) return new Set();
    const tx = await this.db.begin();
    try {
      await tx.query(
        `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
        [TRIAL_LOCK_TIMEOUT, TRIAL_STATEMENT_TIMEOUT],
      );
      return await unindexablePredicates(tx, slug, predicates);
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (code === LOCK_NOT_AVAILABLE || code === QUERY_CANCELED) {
        throw conflict(
          `The records of dataset ${slug} are being changed, so its row filter could not be checked ` +
            'for indexing; nothing was changed: try again',
        );
      }
      throw error;
    } finally {
      await tx.rollback();
    }
  }

  /**
   * The indexes of populations (see populationIndexes) on every record table, as
   * `records.<name>`, by name: what {@link dropPopulationIndexesExcept} may drop.
   */
  async populationIndexNames(): Promise<Set<string>> {
    const rows = await this.dataSource.query<{ name: string; slug: string }[]>(
      `SELECT c.relname AS name, d.slug FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_class t ON t.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = $1
         JOIN dataset d ON d.slug = t.relname`,
      [RECORDS_SCHEMA],
    );
    return new Set(
      rows
        .filter(
          (r) =>
            r.name.startsWith(`${r.slug.slice(0, 40)}${POPULATION_INDEX_MARK}`) &&
            /_[0-9a-f]{16}$/.test(r.name),
        )
        .map((r) => r.name),
    );
  }

  /**
   * Drops, concurrently, the indexes of populations in `listed` (found by {@link populationIndexNames}
   * before the demands were read) that no demand asks for now: a row filter no longer in force. One
   * listed before the demands were read and still asked for is kept; one built since was not listed.
   * Resolves to how many it dropped; one it could not drop, the next pass does.
   */
  async dropPopulationIndexesExcept(
    listed: ReadonlySet<string>,
    demands: Iterable<[string, readonly IndexDemand[]]>,
  ): Promise<number> {
    const kept = new Set<string>();
    const byDataset = new Map<string, IndexDemand[]>();
    for (const [datasetId, list] of demands)
      byDataset.set(datasetId, [...(byDataset.get(datasetId) ?? []), ...list]);
    const shapes = await this.shapes([...byDataset.keys()]);
    for (const [datasetId, list] of byDataset) {
      const shape = shapes.get(datasetId);
      const predicates = list.flatMap((d) => ('predicate' in d ? [d.predicate] : []));
      if (!shape || !predicates.length) continue;
      const declared = await this.declaredIndexesOf(shape);
      for (const predicate of predicates) {
        for (const index of populationIndexes(shape, predicate, declared)) kept.add(index.name);
      }
    }
    let dropped = 0;
    for (const name of listed) {
      if (kept.has(name)) continue;
      try {
        await this.db.connection((client) =>
          client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdent(RECORDS_SCHEMA)}.${quoteIdent(name)}`),
        );
        dropped++;
      } catch (error) {
        this.logger.warn({ err: error, index: name }, 'population index not dropped; the next pass retries');
      }
    }
    return dropped;
  }

  /** A dataset's declared indexes (each a list of field names), those of its fields only. */
  private async declaredIndexesOf(shape: Pick<DatasetShapeRecord, 'id' | 'fields'>): Promise<string[][]> {
    const rows = await this.dataSource.query<{ declared_indexes: string[][] }[]>(
      `SELECT declared_indexes FROM dataset WHERE id = $1`,
      [shape.id],
    );
    const known = new Set(shape.fields.map((f) => f.name));
    return (rows[0]?.declared_indexes ?? []).filter((fields) => fields.every((name) => known.has(name)));
  }

  /** Every dataset's declared indexes (each a list of field names), by dataset. */
  async declaredIndexes(): Promise<[string, string[][]][]> {
    const rows = await this.dataSource.query<{ id: string; declared_indexes: string[][] }[]>(
      `SELECT id, declared_indexes FROM dataset WHERE declared_indexes <> '[]'::jsonb ORDER BY created_at, id`,
    );
    return rows.map((row) => [row.id, row.declared_indexes]);
  }

  /**
   * Builds every dataset's declared indexes that are missing, or invalid after a failed build (see
   * {@link ensureIndexes}).
   */
  async ensureDeclaredIndexes(): Promise<IndexCounts> {
    return this.ensureIndexesOf(await this.declaredIndexes());
  }

  /**
   * {@link ensureIndexes} for several datasets (a dataset named twice is asked once, its lists
   * together), one after another; a dataset whose indexes cannot be built is counted and the others
   * still are. Resolves to how many indexes were already there, built, rebuilt, or could not be built.
   */
  async ensureIndexesOf(demands: Iterable<[string, readonly IndexDemand[]]>): Promise<IndexCounts> {
    const byDataset = new Map<string, IndexDemand[]>();
    for (const [datasetId, indexes] of demands) {
      byDataset.set(datasetId, [...(byDataset.get(datasetId) ?? []), ...indexes]);
    }
    const counts: IndexCounts = { present: 0, built: 0, rebuilt: 0, failed: 0 };
    for (const [datasetId, indexes] of byDataset) {
      try {
        for (const { outcome } of await this.ensureIndexes(datasetId, indexes)) counts[outcome]++;
      } catch {
        counts.failed++;
      }
    }
    return counts;
  }

  /**
   * {@link ensureIndexesOf} for a change that has committed (a declaration, a version coming into
   * force), waited for at most {@link indexWaitMs}: a concurrent build waits for every transaction
   * older than it (a long export's included), and the change must not wait with it. Past the bound
   * the build goes on in the background; either way its outcome is logged, and an index that could
   * not be built is built by the next check (RecordIndexKeeper). Never throws: the change stands.
   */
  async ensureIndexesSoon(
    demands: Iterable<[string, readonly IndexDemand[]]>,
    what: string,
  ): Promise<IndexCounts | null> {
    const started = Date.now();
    const building = this.ensureIndexesOf(demands).then((counts) => {
      logIndexCounts(this.logger, counts, { what, ms: Date.now() - started });
      return counts;
    });
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.indexWaitMs);
    });
    try {
      const counts = await Promise.race([building, waited]);
      if (counts === null) {
        this.logger.info(
          { what, ms: Date.now() - started },
          'record indexes still building, in the background',
        );
      }
      return counts;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The dataset a caller may change (ingest, record consent, update, report subject access): its
   * provider's stewards only, by the caller's ability. Another agency's dataset answers NOT_FOUND like
   * a missing one, even though its metadata is in the catalog; a role that never may is FORBIDDEN.
   */
  async requireWritable(
    ctx: RequestContext,
    id: string,
    action: 'ingest' | 'recordConsent' | 'update' | 'reportSubjectAccess' = 'ingest',
  ): Promise<WritableDataset & DatasetRetention & { subjectField: string | null; providerAgencyId: string }> {
    const dataset = await this.get(ctx, id);
    if (!dataset) throw new BrokerError(ErrorCode.NOT_FOUND, 'Dataset not found', { reason: 'NOT_PARTY' });
    authorize(
      ctx.principal,
      action,
      asSubject('Dataset', { providerAgencyId: dataset.providerAgencyId }),
      'Dataset',
    );
    return {
      id: dataset.id,
      slug: dataset.slug,
      keyField: dataset.keyField,
      subjectField: dataset.subjectField,
      providerAgencyId: dataset.providerAgencyId,
      retentionDays: dataset.retentionDays,
      retentionField: dataset.retentionField,
      fields: dataset.fields.map((f) => ({
        name: f.name,
        type: f.type,
        classification: f.classification,
        identity: f.identity,
        required: f.required,
        description: f.description,
      })),
    };
  }
}

/**
 * Logs what a pass over record indexes did, when it did anything: `warn` if one could not be built
 * (the next check retries it), else `info`. One home for that line (RecordIndexKeeper, ensureIndexesSoon).
 */
export function logIndexCounts(
  logger: Logger,
  counts: IndexCounts,
  fields: Record<string, unknown> = {},
): void {
  if (!counts.built && !counts.rebuilt && !counts.failed) return;
  logger[counts.failed ? 'warn' : 'info'](
    { ...fields, indexes: counts },
    'record indexes brought up to date',
  );
}

/** How long a committed change waits for its record indexes by default (see ensureIndexesSoon). */
export const INDEX_WAIT_MS = 5000;

/** How many indexes {@link DatasetService.ensureIndexesOf} found there, built, rebuilt, or could not build. */
export type IndexCounts = Record<IndexOutcome | 'failed', number>;

/** The declared indexes with `more` added, each field list once, in the order first declared. */
function withDeclared(declared: readonly string[][], more: readonly string[][]): string[][] {
  const seen = new Set(declared.map((fields) => JSON.stringify(fields)));
  const all = [...declared];
  for (const fields of more) {
    const key = JSON.stringify(fields);
    if (!seen.has(key)) all.push([...fields]);
    seen.add(key);
  }
  return all;
}
