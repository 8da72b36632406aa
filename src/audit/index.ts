export { AuditLog, CHECKPOINT_KEY_PURPOSE, type AppendedEvent, type AuditLogOptions } from './audit-log.ts';
export { hashRecord, checkpointMessage, GENESIS_HASH, type AuditInput, type AuditRecord } from './record.ts';
export { verifyChain, type Checkpoint, type VerifyResult } from './verify.ts';
export { storedEvents, storedCheckpoints, verifyStoredChain } from './store-source.ts';
export { exportLines, verifyExportFile, type ExportFormat, type ExportHeader, type FileVerifyOptions } from './export.ts';
export { toOcsf } from './ocsf.ts';
export { AuditStreamer, type AuditSink, type StreamOptions } from './streaming.ts';
