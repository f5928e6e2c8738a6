import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { agentTag } from '../../shared';
import type { DbEngine } from './connect';

/**
 * Numbered migrations, one schema for SQLite and PostgreSQL. Append only: a released migration is
 * never edited. Only the auto-increment column differs between the engines.
 */
function migrations(engine: DbEngine): Record<string, Migration> {
  const autoId = (table: string) =>
    engine === 'postgres'
      ? sql`CREATE TABLE ${sql.table(table)} (id SERIAL PRIMARY KEY)`
      : sql`CREATE TABLE ${sql.table(table)} (id INTEGER PRIMARY KEY AUTOINCREMENT)`;
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('agents')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('hostname', 'text', (c) => c.notNull())
          .addColumn('machine_id', 'text', (c) => c.notNull())
          .addColumn('segment', 'text', (c) => c.notNull())
          .addColumn('token_hash', 'text', (c) => c.notNull())
          .addColumn('unlock_secret', 'text', (c) => c.notNull())
          .addColumn('enrolled_at', 'text', (c) => c.notNull())
          .addColumn('last_seen', 'text')
          .addColumn('ack_seq', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_hash', 'text', (c) => c.notNull())
          .addColumn('chain_broken_seq', 'integer')
          .addColumn('policy_version', 'integer')
          .addColumn('enforcement', 'text')
          .addColumn('agent_version', 'text')
          .addColumn('last_user', 'text')
          .execute();
        await db.schema
          .createTable('enrollment_tokens')
          .addColumn('hash', 'text', (c) => c.primaryKey())
          .addColumn('segment', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('uses_left', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('events')
          .addColumn('agent_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('events_pk', ['agent_id', 'seq'])
          .execute();
        await db.schema.createIndex('events_type_at').on('events').columns(['type', 'at']).execute();
        await db.schema
          .createTable('inventory_latest')
          .addColumn('agent_id', 'text', (c) => c.primaryKey())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('snapshot', 'text', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .execute();
        await autoId('inventory_history').execute(db);
        await db.schema
          .alterTable('inventory_history')
          .addColumn('agent_id', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema
          .alterTable('inventory_history')
          .addColumn('hash', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema
          .alterTable('inventory_history')
          .addColumn('snapshot', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema
          .alterTable('inventory_history')
          .addColumn('received_at', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema.createIndex('inventory_history_agent').on('inventory_history').columns(['agent_id', 'id']).execute();
        await db.schema
          .createTable('policies')
          .addColumn('segment', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('document', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('policies_pk', ['segment', 'version'])
          .execute();
        await db.schema
          .createTable('keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('private_key', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('admins')
          .addColumn('username', 'text', (c) => c.primaryKey())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('api_token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await autoId('audit_log').execute(db);
        for (const col of ['at', 'actor', 'role', 'action', 'target', 'detail', 'address']) {
          await db.schema
            .alterTable('audit_log')
            .addColumn(col, 'text', (c) => c.notNull().defaultTo(''))
            .execute();
        }
        await db.schema
          .createTable('incidents')
          .addColumn('receipt', 'text', (c) => c.primaryKey())
          .addColumn('agent_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('category', 'text', (c) => c.notNull())
          .addColumn('description', 'text', (c) => c.notNull())
          .addColumn('occurred_at', 'text')
          .addColumn('contact', 'text')
          .addColumn('context', 'text', (c) => c.notNull())
          .addColumn('reported_at', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('updated_by', 'text')
          .execute();
        await db.schema
          .createTable('exceptions')
          .addColumn('request_id', 'text', (c) => c.primaryKey())
          .addColumn('agent_id', 'text', (c) => c.notNull())
          .addColumn('request_code', 'text', (c) => c.notNull())
          .addColumn('device', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('minutes', 'integer', (c) => c.notNull())
          .addColumn('requested_at', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('decided_at', 'text')
          .addColumn('decided_by', 'text')
          .addColumn('expires_at', 'text')
          .execute();
      },
    },
    '0002_console': {
      async up(db: Kysely<unknown>) {
        // Console sessions live in the database so that several collectors can serve one console.
        await db.schema
          .createTable('console_sessions')
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('csrf_token', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_seen_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('address', 'text', (c) => c.notNull())
          .addColumn('user_agent', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('console_sessions_user').on('console_sessions').column('username').execute();
        await db.schema
          .alterTable('admins')
          .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema.alterTable('admins').addColumn('locked_until', 'text').execute();
        await db.schema.alterTable('admins').addColumn('last_login_at', 'text').execute();
        await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
        await db.schema.createIndex('agents_last_seen').on('agents').column('last_seen').execute();
        await db.schema.createIndex('events_agent_type').on('events').columns(['agent_id', 'type', 'seq']).execute();
        // The ledger export pages through agents by host name and reads these columns, not snapshots.
        await db.schema.createIndex('agents_hostname_id').on('agents').columns(['hostname', 'id']).execute();
        await db.schema.alterTable('inventory_latest').addColumn('ledger', 'text').execute();
      },
    },
    '0003_sync_trust': {
      async up(db: Kysely<unknown>) {
        // Every request of an agent and every wrong token is looked up by this hash.
        await db.schema.createIndex('agents_token_hash').on('agents').column('token_hash').execute();
        // The unlock tool finds the terminal of a request code by its tag, not by loading every secret.
        await db.schema.alterTable('agents').addColumn('unlock_tag', 'text').execute();
        const agents = await sql<{ id: string }>`SELECT id FROM agents`.execute(db);
        for (const { id } of agents.rows) await sql`UPDATE agents SET unlock_tag = ${agentTag(id)} WHERE id = ${id}`.execute(db);
        await db.schema.createIndex('agents_unlock_tag').on('agents').column('unlock_tag').execute();
        // Why the chain was flagged, the highest head the agent reported, and when its outbox last moved.
        await db.schema.alterTable('agents').addColumn('chain_broken_reason', 'text').execute();
        await db.schema.alterTable('agents').addColumn('head_seq', 'integer').execute();
        await db.schema.alterTable('agents').addColumn('head_hash', 'text').execute();
        await db.schema.alterTable('agents').addColumn('progress_at', 'text').execute();
        // The expected seq of the last seq_conflict: the same one twice in a row is a hole in the log.
        await db.schema.alterTable('agents').addColumn('conflict_seq', 'integer').execute();
        // Receipts are unique per terminal, not per collector: two terminals may draw the same one.
        await db.schema
          .createTable('incidents_v3')
          .addColumn('receipt', 'text', (c) => c.notNull())
          .addColumn('agent_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('category', 'text', (c) => c.notNull())
          .addColumn('description', 'text', (c) => c.notNull())
          .addColumn('occurred_at', 'text')
          .addColumn('contact', 'text')
          .addColumn('context', 'text', (c) => c.notNull())
          .addColumn('reported_at', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('updated_by', 'text')
          .addPrimaryKeyConstraint('incidents_v3_pk', ['agent_id', 'receipt'])
          .execute();
        await sql`INSERT INTO incidents_v3 SELECT receipt, agent_id, seq, category, description, occurred_at, contact, context, reported_at, status, updated_at, updated_by FROM incidents`.execute(
          db,
        );
        await db.schema.dropTable('incidents').execute();
        await db.schema.alterTable('incidents_v3').renameTo('incidents').execute();
        await db.schema.createIndex('incidents_receipt').on('incidents').column('receipt').execute();
        // Rotations of the policy-signing key, each signed by the key it replaces.
        await autoId('key_rotations').execute(db);
        for (const col of ['previous_public_key', 'public_key', 'statement', 'created_at']) {
          await db.schema
            .alterTable('key_rotations')
            .addColumn(col, 'text', (c) => c.notNull().defaultTo(''))
            .execute();
        }
      },
    },
    '0004_forwarding': {
      async up(db: Kysely<unknown>) {
        // SIEM destinations (docs/design.md#forwarding-to-a-siem), each with its cursors and its lease.
        await db.schema
          .createTable('forward_destinations')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('port', 'integer', (c) => c.notNull())
          .addColumn('transport', 'text', (c) => c.notNull())
          .addColumn('ca_file', 'text')
          .addColumn('server_name', 'text')
          .addColumn('format', 'text', (c) => c.notNull())
          .addColumn('send_events', 'integer', (c) => c.notNull())
          .addColumn('send_audit', 'integer', (c) => c.notNull())
          .addColumn('enabled', 'integer', (c) => c.notNull())
          .addColumn('event_cursor', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('audit_cursor', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('last_success_at', 'text')
          .addColumn('last_error', 'text')
          .addColumn('last_error_at', 'text')
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        // The forwarding order: stamped by one writer at a time, so a row committed late is stamped
        // after every row already stamped and no cursor can pass over it (an insertion id can:
        // PostgreSQL hands out ids before commit).
        await db.schema.alterTable('events').addColumn('forward_order', 'bigint').execute();
        await db.schema.alterTable('audit_log').addColumn('forward_order', 'bigint').execute();
        await db.schema.createIndex('events_forward_order').on('events').column('forward_order').execute();
        await db.schema.createIndex('audit_log_forward_order').on('audit_log').column('forward_order').execute();
        await db.schema.createIndex('events_forward_pending').on('events').columns(['agent_id', 'seq']).where(sql.ref('forward_order'), 'is', null).execute();
        await db.schema.createIndex('audit_log_forward_pending').on('audit_log').column('id').where(sql.ref('forward_order'), 'is', null).execute();
        await db.schema
          .createTable('forward_counters')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('value', 'bigint', (c) => c.notNull())
          .execute();
        await sql`INSERT INTO forward_counters (name, value) VALUES ('events', 0), ('audit', 0)`.execute(db);
      },
    },
    '0005_alerts': {
      async up(db: Kysely<unknown>) {
        // Alert mail (docs/design.md#alert-mail). One relay; its password is stored encrypted with a
        // key kept in a 0600 file beside the signing key, never readable from the database alone.
        await db.schema
          .createTable('alert_smtp')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('port', 'integer', (c) => c.notNull())
          .addColumn('security', 'text', (c) => c.notNull())
          .addColumn('username', 'text')
          .addColumn('password_enc', 'text')
          .addColumn('from_address', 'text', (c) => c.notNull())
          .addColumn('console_url', 'text')
          .addColumn('last_success_at', 'text')
          .addColumn('last_error', 'text')
          .addColumn('last_error_at', 'text')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await autoId('alert_rules').execute(db);
        for (const col of ['alert_type', 'segment', 'recipients', 'options', 'created_at']) {
          await db.schema
            .alterTable('alert_rules')
            .addColumn(col, 'text', (c) => c.notNull().defaultTo(''))
            .execute();
        }
        // The outbox: one row per mail, written in the same transaction as the cursor move that found it.
        await autoId('alert_outbox').execute(db);
        for (const col of ['dedup_key', 'recipient', 'language', 'subject', 'body', 'state', 'created_at', 'next_attempt_at']) {
          await db.schema
            .alterTable('alert_outbox')
            .addColumn(col, 'text', (c) => c.notNull().defaultTo(''))
            .execute();
        }
        await db.schema
          .alterTable('alert_outbox')
          .addColumn('rule_id', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .alterTable('alert_outbox')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema.alterTable('alert_outbox').addColumn('last_error', 'text').execute();
        await db.schema.alterTable('alert_outbox').addColumn('sent_at', 'text').execute();
        await db.schema.createIndex('alert_outbox_dedup').unique().on('alert_outbox').column('dedup_key').execute();
        await db.schema.createIndex('alert_outbox_due').on('alert_outbox').columns(['state', 'next_attempt_at']).execute();
        await db.schema.createIndex('alert_outbox_rule').on('alert_outbox').columns(['rule_id', 'created_at']).execute();
        // The evaluator's cursor over events.forward_order and its lease (several collectors on one PostgreSQL).
        await db.schema
          .createTable('alert_state')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('event_cursor', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'text')
          .execute();
        await sql`INSERT INTO alert_state (name, event_cursor) VALUES ('alerts', 0)`.execute(db);
      },
    },
    '0006_retention': {
      async up(db: Kysely<unknown>) {
        // Retention (docs/design.md#retention): the period, and per terminal the signed checkpoint
        // its stored chain starts from once older events are pruned.
        await db.schema
          .createTable('retention_settings')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('years', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('updated_by', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('chain_checkpoints')
          .addColumn('agent_id', 'text', (c) => c.primaryKey())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('pruned_at', 'text', (c) => c.notNull())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .execute();
        // Pruning looks for the oldest events of each terminal by the time they were received.
        await db.schema.createIndex('events_agent_received').on('events').columns(['agent_id', 'received_at']).execute();
      },
    },
  };
}

/** Kysely's Migrator reads the migrations from here rather than from files, so builds stay single. */
export function migrationProvider(engine: DbEngine): MigrationProvider {
  return { getMigrations: async () => migrations(engine) };
}
