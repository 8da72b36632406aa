import { authorize, compilePolicySet, type AuthorizationRequest } from '../policy/index.ts';
import type { Store } from '../store/index.ts';
import type { PdpService } from './service.ts';

export interface PreviewWindow {
  /** ISO-8601 instants; the window is [from, to). */
  from: string;
  to: string;
  /** Changed decisions listed at most (all are counted). */
  limit: number;
}

export interface ChangedDecision {
  seq: number;
  ts: string;
  request: AuthorizationRequest;
  before: 'allow' | 'deny';
  after: 'allow' | 'deny';
  beforeReasons: string[];
  afterReasons: string[];
}

export interface PreviewReport {
  replayed: number;
  changed: number;
  becameAllow: number;
  becameDeny: number;
  /** Decisions that could not be replayed (their context was too large to log, or no longer parses). */
  skipped: number;
  decisions: ChangedDecision[];
}

/**
 * Policy impact preview: replays the decisions recorded in the audit chain over a window against a
 * draft policy set and reports every one that would change, before the draft goes live. Decisions are
 * replayed over today's entities (the registry as it is now), which is what the draft would meet.
 */
export async function previewPolicyImpact(store: Store, pdp: PdpService, draftCedar: string, window: PreviewWindow): Promise<PreviewReport> {
  const draft = compilePolicySet(draftCedar);
  const report: PreviewReport = { replayed: 0, changed: 0, becameAllow: 0, becameDeny: 0, skipped: 0, decisions: [] };
  let after = 0;
  for (;;) {
    const rows = await store.db
      .selectFrom('audit_events')
      .select(['seq', 'ts', 'details'])
      .where('action', '=', 'decision')
      .where('ts', '>=', window.from)
      .where('ts', '<', window.to)
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(2000)
      .execute();
    for (const row of rows) {
      const details = JSON.parse(row.details) as { request?: AuthorizationRequest & { contextSha256?: string }; policyDecision?: 'allow' | 'deny'; reasons?: string[] };
      if (!details.request || details.request.contextSha256 || !details.policyDecision) {
        report.skipped += 1;
        continue;
      }
      let decision;
      try {
        decision = authorize(draft, pdp.entities, details.request);
      } catch {
        report.skipped += 1;
        continue;
      }
      report.replayed += 1;
      if (decision.decision === details.policyDecision) continue;
      report.changed += 1;
      if (decision.decision === 'allow') report.becameAllow += 1;
      else report.becameDeny += 1;
      if (report.decisions.length < window.limit) {
        report.decisions.push({ seq: Number(row.seq), ts: row.ts, request: details.request, before: details.policyDecision, after: decision.decision, beforeReasons: details.reasons ?? [], afterReasons: decision.reasons });
      }
    }
    if (rows.length < 2000) return report;
    after = Number(rows[rows.length - 1]!.seq);
  }
}
