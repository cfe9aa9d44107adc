import { IdentityRole } from '@broker/registry';
import { IDENTITY_ROLES as ADMIN_UI_IDENTITY_ROLES } from '../../../../apps/admin/src/api/schema';
import {
  IDENTITY_PROPERTY,
  IDENTITY_ROLES,
  emptyIdentityValues,
  emptyUnparsedCounts,
} from './identity-fields';

/**
 * The identity roles have one home, IDENTITY_ROLES. The demo's datasets take their type from it;
 * the two lists that cannot import it are held to it here: the admin UI's (a browser bundle that
 * imports no server library) and the registry's GraphQL enum (the contract clients see). A role
 * added in one place and not the others fails this test.
 */
describe('identity roles', () => {
  it('are the same list in the contract, the admin UI and the linkage library, in the same order', () => {
    expect(Object.values(IdentityRole)).toEqual([...IDENTITY_ROLES]);
    expect(ADMIN_UI_IDENTITY_ROLES).toEqual([...IDENTITY_ROLES]);
  });

  it('each fill one property of a record identity, and each count its values not understood', () => {
    expect(Object.keys(IDENTITY_PROPERTY)).toEqual([...IDENTITY_ROLES]);
    expect(new Set(Object.values(IDENTITY_PROPERTY))).toEqual(new Set(Object.keys(emptyIdentityValues())));
    expect(Object.keys(emptyUnparsedCounts())).toEqual([...IDENTITY_ROLES]);
  });
});
