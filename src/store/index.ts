export { tryLease, releaseLease } from './leases.ts';
export { advisoryXactLock } from './advisory-lock.ts';
export { LOCKS } from './locks.ts';
export { Store, LOCK_AUDIT_CHAIN, type Dialect, type StoreOptions, type Tx } from './store.ts';
export { isStoreUnreachable, asStoreError } from './unavailable.ts';
export { dbErrorKind, isUniqueViolation, type DbErrorKind } from './db-errors.ts';
export type { StoreLogger } from './pg-pool.ts';
export { ChangeEvents, type ChangeEvent, type ChangeHandler, type ChangeTopics, type ChangeTopic, type TopicEvent } from './events.ts';
export { ReplicatedView, type ReplicatedViewOptions } from './replicated-view.ts';
export type {
  Database,
  HumanTable,
  GroupTable,
  IdentityTable,
  FindingTable,
  AuditEventTable,
  AuditCheckpointTable,
  KeyTable,
} from './schema.ts';
