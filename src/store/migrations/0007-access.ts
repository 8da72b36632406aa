import type { Kysely, Migration } from 'kysely';

/** Grants of entitlements, just-in-time access requests, separation-of-duties rules, certification campaigns. */
export const access: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('grants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('principal_id', 'text', (c) => c.notNull())
      .addColumn('entitlement', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('request_id', 'text')
      .addColumn('granted_by', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text')
      .addColumn('ended_at', 'text')
      .addColumn('ended_by', 'text')
      .addColumn('end_reason', 'text')
      .execute();
    await db.schema.createIndex('grants_principal').on('grants').columns(['principal_id', 'status']).execute();
    await db.schema.createIndex('grants_expiry').on('grants').columns(['status', 'expires_at']).execute();

    await db.schema
      .createTable('approval_rules')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('pattern', 'text', (c) => c.notNull().unique())
      .addColumn('stages', 'text', (c) => c.notNull())
      .addColumn('max_duration_seconds', 'integer', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('access_requests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('principal_id', 'text', (c) => c.notNull())
      .addColumn('entitlement', 'text', (c) => c.notNull())
      .addColumn('requester_id', 'text', (c) => c.notNull())
      .addColumn('justification', 'text', (c) => c.notNull())
      .addColumn('duration_seconds', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('rule_pattern', 'text')
      .addColumn('stages', 'text', (c) => c.notNull())
      .addColumn('grant_id', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('decided_at', 'text')
      .execute();
    await db.schema.createIndex('access_requests_status').on('access_requests').columns(['status', 'principal_id']).execute();

    await db.schema
      .createTable('access_approvals')
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('approver_id', 'text', (c) => c.notNull())
      .addColumn('decision', 'text', (c) => c.notNull())
      .addColumn('comment', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('access_approvals_pk', ['request_id', 'approver_id'])
      .execute();

    await db.schema
      .createTable('sod_rules')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('description', 'text')
      .addColumn('entitlements', 'text', (c) => c.notNull())
      .addColumn('pairs', 'text', (c) => c.notNull())
      .addColumn('count_delegation', 'integer', (c) => c.notNull())
      .addColumn('enforce', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('certifications')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('reviewers', 'text', (c) => c.notNull())
      .addColumn('deadline', 'text', (c) => c.notNull())
      .addColumn('on_no_answer', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('webhook_url', 'text')
      .addColumn('sealed_secret', 'text')
      .addColumn('remind_before', 'text', (c) => c.notNull())
      .addColumn('reminders_sent', 'text', (c) => c.notNull())
      .addColumn('last_reminder_error', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('closed_at', 'text')
      .execute();
    await db.schema.createIndex('certifications_status').on('certifications').columns(['status', 'deadline']).execute();

    await db.schema
      .createTable('certification_items')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('campaign_id', 'text', (c) => c.notNull())
      .addColumn('principal_id', 'text', (c) => c.notNull())
      .addColumn('entitlement', 'text', (c) => c.notNull())
      .addColumn('grant_ids', 'text', (c) => c.notNull())
      .addColumn('reviewer_ids', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('decided_by', 'text')
      .addColumn('decision_source', 'text')
      .addColumn('comment', 'text')
      .addColumn('delegations', 'text', (c) => c.notNull())
      .addColumn('revoked_grant_ids', 'text', (c) => c.notNull())
      .addColumn('decided_at', 'text')
      .execute();
    await db.schema.createIndex('certification_items_campaign').on('certification_items').columns(['campaign_id', 'status']).execute();
  },
};
