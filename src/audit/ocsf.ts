import type { AuditRecord } from './record.ts';

/**
 * Maps an audit event to an OCSF 1.3 event so SIEMs ingest it without a custom parser.
 * Account changes → Account Change (3001), sign-ins and token issuance → Authentication (3002),
 * everything else (policy decisions, tool calls, admin reads) → API Activity (6003).
 * The original record travels in `unmapped.mandate`, so an OCSF export still verifies.
 */
const ACCOUNT_ACTIVITY: Record<string, number> = {
  create: 1,
  resume: 2,
  reactivate: 2,
  password: 3,
  suspend: 5,
  offboard: 5,
  decommission: 6,
  delete: 6,
};

function classify(action: string): { classUid: number; className: string; categoryUid: number; categoryName: string; activityId: number; activityName: string } {
  const [domain = '', verb = ''] = action.split('.');
  if (['human', 'agent', 'workload', 'group', 'handover'].includes(domain)) {
    const activityId = ACCOUNT_ACTIVITY[verb] ?? 99;
    return { classUid: 3001, className: 'Account Change', categoryUid: 3, categoryName: 'Identity & Access Management', activityId, activityName: activityId === 99 ? verb || 'Other' : verb };
  }
  if (['auth', 'login', 'token', 'oauth'].includes(domain)) {
    return { classUid: 3002, className: 'Authentication', categoryUid: 3, categoryName: 'Identity & Access Management', activityId: domain === 'token' || domain === 'oauth' ? 3 : 1, activityName: domain === 'token' || domain === 'oauth' ? 'Authentication Ticket' : 'Logon' };
  }
  const activityId = /\b(create|put|post)\b/.test(verb) ? 1 : /\b(read|get|list|call)\b/.test(verb || action) ? 2 : /\b(update|patch)\b/.test(verb) ? 3 : /\bdelete\b/.test(verb) ? 4 : 99;
  return { classUid: 6003, className: 'API Activity', categoryUid: 6, categoryName: 'Application Activity', activityId, activityName: action };
}

function isFailure(outcome: string): boolean {
  return outcome === 'failure' || outcome === 'deny' || outcome === 'error';
}

export function toOcsf(record: AuditRecord): Record<string, unknown> {
  const kind = classify(record.action);
  const failed = isFailure(record.outcome);
  return {
    class_uid: kind.classUid,
    class_name: kind.className,
    category_uid: kind.categoryUid,
    category_name: kind.categoryName,
    activity_id: kind.activityId,
    activity_name: kind.activityName,
    type_uid: kind.classUid * 100 + kind.activityId,
    time: Date.parse(record.ts),
    severity_id: failed ? 3 : 1,
    status_id: failed ? 2 : 1,
    status: failed ? 'Failure' : 'Success',
    status_detail: record.outcome,
    message: `${record.actor} ${record.action}${record.target ? ` ${record.target}` : ''}: ${record.outcome}`,
    actor: { user: { uid: record.actor, type: record.actor.split(':')[0] } },
    ...(record.target && { resources: [{ uid: record.target }] }),
    metadata: { version: '1.3.0', uid: String(record.seq), product: { name: 'Mandate', vendor_name: 'Mandate' }, log_name: 'mandate.audit' },
    unmapped: { mandate: record },
  };
}
