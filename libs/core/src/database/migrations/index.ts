import { Foundation1763769600000 } from './1763769600000-foundation';
import { Audit1763856000000 } from './1763856000000-audit';
import { Agreements1763856100000 } from './1763856100000-agreements';
import { Consent1763942400000 } from './1763942400000-consent';
import { Releases1764028800000 } from './1764028800000-releases';
import { Linkage1764115200000 } from './1764115200000-linkage';
import { LinkageIdentityRoles1764316800000 } from './1764316800000-linkage-identity-roles';
import { LinkageReview1764317000000 } from './1764317000000-linkage-review';
import { OpenRegister1764400000000 } from './1764400000000-open-register';
import { Users1764500000000 } from './1764500000000-users';
import { AggregateBudget1764600000000 } from './1764600000000-aggregate-budget';

import { KeysetCursors1764712000000 } from './1764712000000-keyset-cursors';
import { ReleaseIndexPending1764900000000 } from './1764900000000-release-index-pending';
import { ReleaseIndexDeferred1765000000000 } from './1765000000000-release-index-deferred';
import { DeclaredIndexes1765100000000 } from './1765100000000-declared-indexes';
import { PersonKeyIndex1765200000000 } from './1765200000000-person-key-index';
import { ReleaseStaged1765300000000 } from './1765300000000-release-staged';
import { ReleaseRecordUnchecked1765400000000 } from './1765400000000-release-record-unchecked';
import { PersonKeyPerDataset1765500000000 } from './1765500000000-person-key-per-dataset';
import { PersonKeyPopulation1766820000000 } from './1766820000000-person-key-population';
import { ReleaseRecordInline1766860000000 } from './1766860000000-release-record-inline';
import { PolicyStampPerAgency1766870000000 } from './1766870000000-policy-stamp-per-agency';
import { HashKeyIndex1765600000000 } from './1765600000000-hash-key-index';
import { HashKeyDestroyed1765700000000 } from './1765700000000-hash-key-destroyed';
import { HashKeyCommon1765800000000 } from './1765800000000-hash-key-common';
import { HashKeyCommonFiled1765900000000 } from './1765900000000-hash-key-common-filed';
import { HashKeySized1766000000000 } from './1766000000000-hash-key-sized';
import { HashKeyServes1766100000000 } from './1766100000000-hash-key-serves';
import { LinkageChunksFinished1766200000000 } from './1766200000000-linkage-chunks-finished';
import { AccountsVouched1766300000000 } from './1766300000000-accounts-vouched';
import { LinkageChunkDestructions1766400000000 } from './1766400000000-linkage-chunk-destructions';
import { LinkageRunRestarts1766500000000 } from './1766500000000-linkage-run-restarts';
import { LinkageTriggerRetention1766640000000 } from './1766640000000-linkage-trigger-retention';
import { HashKeyPopulation1766700000000 } from './1766700000000-hash-key-population';
import { AggregateBudgetAgreement1766900000000 } from './1766900000000-aggregate-budget-agreement';
import { RecordConsent1766910000000 } from './1766910000000-record-consent';

/** Every migration, oldest first. A landed migration is never edited: add a new one. */
export const MIGRATIONS = [
  Foundation1763769600000,
  Audit1763856000000,
  Agreements1763856100000,
  Consent1763942400000,
  Releases1764028800000,
  Linkage1764115200000,
  LinkageIdentityRoles1764316800000,
  LinkageReview1764317000000,
  OpenRegister1764400000000,
  Users1764500000000,
  AggregateBudget1764600000000,
  KeysetCursors1764712000000,
  ReleaseIndexPending1764900000000,
  ReleaseIndexDeferred1765000000000,
  DeclaredIndexes1765100000000,
  PersonKeyIndex1765200000000,
  ReleaseStaged1765300000000,
  ReleaseRecordUnchecked1765400000000,
  PersonKeyPerDataset1765500000000,
  HashKeyIndex1765600000000,
  HashKeyDestroyed1765700000000,
  HashKeyCommon1765800000000,
  HashKeyCommonFiled1765900000000,
  HashKeySized1766000000000,
  HashKeyServes1766100000000,
  LinkageChunksFinished1766200000000,
  AccountsVouched1766300000000,
  LinkageChunkDestructions1766400000000,
  LinkageRunRestarts1766500000000,
  LinkageTriggerRetention1766640000000,
  HashKeyPopulation1766700000000,
  PersonKeyPopulation1766820000000,
  ReleaseRecordInline1766860000000,
  PolicyStampPerAgency1766870000000,
  AggregateBudgetAgreement1766900000000,
  RecordConsent1766910000000,
];
