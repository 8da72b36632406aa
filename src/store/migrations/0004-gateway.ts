import type { Kysely, Migration } from 'kysely';

/**
 * MCP gateway (upstream registry, discovered tools, approvals, settings, per-agent limits) and the
 * vault (envelope encryption: data keys sealed by the master key, secrets sealed by a data key).
 */
export const gateway: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('vault_data_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('sealed_key', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('retired_at', 'text')
      .execute();

    await db.schema
      .createTable('vault_secrets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('data_key_id', 'text', (c) => c.notNull().references('vault_data_keys.id'))
      .addColumn('ciphertext', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('mcp_servers')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('transport', 'text', (c) => c.notNull())
      .addColumn('url', 'text')
      .addColumn('command', 'text')
      .addColumn('args', 'text', (c) => c.notNull())
      .addColumn('env_secret', 'text')
      .addColumn('credential_secret', 'text')
      .addColumn('credential_kind', 'text')
      .addColumn('labels', 'text', (c) => c.notNull())
      .addColumn('settings', 'text', (c) => c.notNull())
      .addColumn('discovered_at', 'text')
      .addColumn('discovery_error', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('mcp_tools')
      .addColumn('server', 'text', (c) => c.notNull().references('mcp_servers.name').onDelete('cascade'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('input_schema', 'text', (c) => c.notNull())
      .addColumn('labels', 'text', (c) => c.notNull())
      .addColumn('settings', 'text', (c) => c.notNull())
      .addColumn('present', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('mcp_tools_pk', ['server', 'name'])
      .execute();

    await db.schema
      .createTable('mcp_approvals')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('owner_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text')
      .addColumn('approver', 'text', (c) => c.notNull())
      .addColumn('server', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('arguments', 'text', (c) => c.notNull())
      .addColumn('args_digest', 'text', (c) => c.notNull())
      .addColumn('policies', 'text', (c) => c.notNull())
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('decided_by', 'text')
      .addColumn('reason', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('decided_at', 'text')
      .execute();
    await db.schema.createIndex('mcp_approvals_status').on('mcp_approvals').columns(['status', 'created_at']).execute();

    await db.schema
      .createTable('mcp_settings')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('mcp_agent_limits')
      .addColumn('identity_id', 'text', (c) => c.primaryKey())
      .addColumn('calls_per_minute', 'integer')
      .addColumn('max_sessions', 'integer')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },

  async down(db: Kysely<unknown>) {
    for (const table of ['mcp_agent_limits', 'mcp_settings', 'mcp_approvals', 'mcp_tools', 'mcp_servers', 'vault_secrets', 'vault_data_keys']) {
      await db.schema.dropTable(table).ifExists().execute();
    }
  },
};
