import fc from 'fast-check';
import * as ui from '../../../../apps/admin/src/lib/dataset-retention';
import { FieldType } from './dataset-schema';
import {
  MAX_DATASET_RETENTION_DAYS,
  NO_RETENTION,
  NO_RETENTION_DAYS,
  retentionAsked,
  retentionRefusal,
  validateRetention,
} from './dataset-retention';

/** The admin UI checks a retention as the broker does (its bundle cannot import this library). */
describe('a retention: the admin UI against validateRetention', () => {
  const names = ['opened_on', 'closed_at', 'case_id', 'score'];
  const fields = fc.uniqueArray(
    fc.record({ name: fc.constantFrom(...names), type: fc.constantFrom(...Object.values(FieldType)) }),
    { selector: (f) => f.name, maxLength: names.length },
  );
  const days = fc.oneof(
    fc.constant(null),
    fc.constant(undefined),
    fc.integer({ min: -3, max: 3 }),
    fc.integer({ min: MAX_DATASET_RETENTION_DAYS - 2, max: MAX_DATASET_RETENTION_DAYS + 2 }),
    fc.integer(),
    fc.double(),
  );
  const field = fc.oneof(fc.constant(null), fc.constant(undefined), fc.constantFrom(...names, 'unknown', ''));

  it('takes and refuses the same retentions, with the same problems and message (fast-check)', () => {
    fc.assert(
      fc.property(days, field, fields, (retentionDays, retentionField, list) => {
        const input = { retentionDays, retentionField };
        const lib = validateRetention(input, list);
        expect(ui.validateRetention(input, list)).toEqual(lib);
        if (!lib.ok) expect(ui.retentionRefusal(lib.problems)).toBe(retentionRefusal(lib.problems));
      }),
      { numRuns: 1000 },
    );
    expect(ui.MAX_DATASET_RETENTION_DAYS).toBe(MAX_DATASET_RETENTION_DAYS);
  });

  const list = [
    { name: 'case_id', type: 'STRING' },
    { name: 'opened_on', type: 'DATE' },
    { name: 'closed_at', type: 'DATETIME' },
  ];

  it('reads the form: both empty removes retention (retentionDays 0), anything else is checked first', () => {
    expect(ui.retentionUpdate({ days: ' 030 ', field: 'opened_on' }, list)).toEqual({
      ok: true,
      retention: { retentionDays: 30, retentionField: 'opened_on' },
      input: { retentionDays: 30, retentionField: 'opened_on' },
    });
    expect(ui.retentionUpdate({ days: '', field: '' }, list)).toEqual({
      ok: true,
      retention: { retentionDays: null, retentionField: null },
      input: { retentionDays: 0, retentionField: null },
    });
    const problems = (draft: { days: string; field: string }) => {
      const result = ui.retentionUpdate(draft, list);
      return result.ok ? [] : result.problems.map((p) => `${p.path} ${p.message}`);
    };
    expect(problems({ days: '30', field: '' })).toEqual([
      'retentionField is required with retentionDays: a DATE or DATETIME field',
    ]);
    expect(problems({ days: '', field: 'closed_at' })).toEqual([
      'retentionDays is required with a retentionField',
    ]);
    for (const days of ['0', '-4', '2.5', '1e3', 'thirty', '36501']) {
      expect(problems({ days, field: 'closed_at' })).toEqual([
        'retentionDays must be an integer from 1 to 36500',
      ]);
    }
    expect(problems({ days: '30', field: 'case_id' })).toEqual([
      'retentionField must be a DATE or DATETIME field',
    ]);
  });

  it('asks first where records may go sooner: retention set, fewer days, or another field', () => {
    const none = { retentionDays: null, retentionField: null };
    const year = { retentionDays: 365, retentionField: 'opened_on' };
    expect(ui.destroysSooner(none, year)).toBe(true);
    expect(ui.destroysSooner(year, { ...year, retentionDays: 30 })).toBe(true);
    expect(ui.destroysSooner(year, { ...year, retentionField: 'closed_at' })).toBe(true);
    expect(ui.destroysSooner(year, year)).toBe(false);
    expect(ui.destroysSooner(year, { ...year, retentionDays: 400 })).toBe(false);
    expect(ui.destroysSooner(year, none)).toBe(false);
    expect(ui.destroysSooner(none, none)).toBe(false);
  });
});

describe('the retention a change asks for (retentionAsked): updateDataset and retentionPreview', () => {
  const year = { retentionDays: 365, retentionField: 'opened_on' };

  it('reads 0 days as no retention, whatever field is beside it', () => {
    for (const kept of [year, NO_RETENTION]) {
      expect(retentionAsked({ retentionDays: NO_RETENTION_DAYS }, kept)).toEqual(NO_RETENTION);
      expect(retentionAsked({ retentionDays: 0, retentionField: 'closed_at' }, kept)).toEqual(NO_RETENTION);
    }
    expect(NO_RETENTION_DAYS).toBe(0);
  });

  it('takes what is left out from what is kept: the dataset for an update, none for a preview', () => {
    expect(retentionAsked({}, year)).toEqual(year);
    expect(retentionAsked({ retentionDays: null, retentionField: null }, year)).toEqual(year);
    expect(retentionAsked({ retentionDays: 30 }, year)).toEqual({ ...year, retentionDays: 30 });
    expect(retentionAsked({ retentionField: 'closed_at' }, year)).toEqual({
      ...year,
      retentionField: 'closed_at',
    });
    expect(retentionAsked({}, NO_RETENTION)).toEqual(NO_RETENTION);
    expect(retentionAsked({ retentionDays: 30 }, NO_RETENTION)).toEqual({
      retentionDays: 30,
      retentionField: null,
    });
    // Below 0 is no request for none: validateRetention refuses it.
    expect(retentionAsked({ retentionDays: -1, retentionField: 'closed_at' }, NO_RETENTION)).toEqual({
      retentionDays: -1,
      retentionField: 'closed_at',
    });
  });
});
