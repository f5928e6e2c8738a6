import type { Generated } from 'kysely';

/** The collector's tables. Times are ISO 8601 UTC text and documents JSON text on both engines. */
export interface AgentsTable {
  id: string;
  hostname: string;
  machine_id: string;
  segment: string;
  token_hash: string;
  unlock_secret: string;
  enrolled_at: string;
  last_seen: string | null;
  ack_seq: number;
  last_hash: string;
  chain_broken_seq: number | null;
  policy_version: number | null;
  enforcement: string | null;
  agent_version: string | null;
  last_user: string | null;
  /** `agentTag(id)`: the first bytes of a request code, to find the terminal without a scan (0003). */
  unlock_tag: string | null;
  /** Why the chain was flagged at `chain_broken_seq` (0003; null for flags set before). */
  chain_broken_reason: string | null;
  /** The highest head (seq, hash) the agent has reported in its `mamori-head` header. */
  head_seq: number | null;
  head_hash: string | null;
  /** When the outbox last moved: the acknowledged seq advanced, or nothing was pending. */
  progress_at: string | null;
  /** The expected seq of the last `seq_conflict` answered; cleared by a stored batch. */
  conflict_seq: number | null;
}

export interface EnrollmentTokensTable {
  hash: string;
  segment: string;
  expires_at: string;
  uses_left: number;
  created_at: string;
}

export interface EventsTable {
  agent_id: string;
  seq: number;
  at: string;
  type: string;
  payload: string;
  prev_hash: string;
  hash: string;
  received_at: string;
  /** The order in which destinations forward the event; null until stamped (0004). */
  forward_order: number | null;
}

export interface InventoryLatestTable {
  agent_id: string;
  hash: string;
  snapshot: string;
  received_at: string;
  /** The snapshot's ledger columns as JSON (`inventoryColumns`); null for rows stored before 0002. */
  ledger: string | null;
}

export interface InventoryHistoryTable {
  id: Generated<number>;
  agent_id: string;
  hash: string;
  snapshot: string;
  received_at: string;
}

export interface PoliciesTable {
  segment: string;
  version: number;
  document: string;
  created_at: string;
  created_by: string;
}

export interface KeysTable {
  id: string;
  public_key: string;
  /** Empty since 0003: the private key lives in the key file beside the database (`policy-signing.key`). */
  private_key: string;
  created_at: string;
}

/** A rotation of the policy-signing key; `statement` is the signed `KeyRotation` JSON. */
export interface KeyRotationsTable {
  id: Generated<number>;
  previous_public_key: string;
  public_key: string;
  statement: string;
  created_at: string;
}

export interface AdminsTable {
  username: string;
  role: string;
  password_hash: string;
  api_token_hash: string;
  created_at: string;
  /** Consecutive failed console logins; reset by a successful one. */
  failed_logins: Generated<number>;
  /** Set after too many failed logins: no login until then. */
  locked_until: string | null;
  last_login_at: string | null;
}

/** A console login. Only the SHA-256 of the session id is stored; the role is read from `admins`. */
export interface ConsoleSessionsTable {
  id_hash: string;
  username: string;
  csrf_token: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  address: string;
  user_agent: string;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: string;
  actor: string;
  role: string;
  action: string;
  target: string;
  detail: string;
  address: string;
  /** The order in which destinations forward the entry; null until stamped (0004). */
  forward_order: number | null;
}

export interface IncidentsTable {
  receipt: string;
  agent_id: string;
  seq: number;
  category: string;
  description: string;
  occurred_at: string | null;
  contact: string | null;
  context: string;
  reported_at: string;
  status: string;
  updated_at: string;
  updated_by: string | null;
}

export interface ExceptionsTable {
  request_id: string;
  agent_id: string;
  request_code: string;
  device: string;
  reason: string;
  minutes: number;
  requested_at: string;
  status: string;
  decided_at: string | null;
  decided_by: string | null;
  expires_at: string | null;
}

/** A SIEM destination (0004); see src/collector/forward/store.ts. */
export interface ForwardDestinationsTable {
  name: string;
  host: string;
  port: number;
  /** `tcp` or `tls`. */
  transport: string;
  ca_file: string | null;
  server_name: string | null;
  /** `rfc5424` or `cef`. */
  format: string;
  send_events: number;
  send_audit: number;
  enabled: number;
  /** The highest `events.forward_order` written and settled (bigint: a string on PostgreSQL). */
  event_cursor: number | string;
  audit_cursor: number | string;
  last_success_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  /** Which collector forwards this destination, until when. */
  lease_owner: string | null;
  lease_until: string | null;
  created_at: string;
}

export interface ForwardCountersTable {
  name: string;
  value: number | string;
}

/** The SMTP relay of alert mail (0005); see src/collector/alerts/store.ts. */
export interface AlertSmtpTable {
  name: string;
  host: string;
  port: number;
  /** `starttls`, `tls` or `none`. */
  security: string;
  username: string | null;
  /** AES-256-GCM with the key in the alert secret file: `v1:iv:tag:ciphertext` (base64). */
  password_enc: string | null;
  from_address: string;
  console_url: string | null;
  last_success_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  updated_at: string;
}

/** An alert rule (0005): which alerts, for which segment (`*` for all), to whom. */
export interface AlertRulesTable {
  id: Generated<number>;
  alert_type: string;
  segment: string;
  /** JSON: `[{address, language}]`. */
  recipients: string;
  /** JSON: `{days?, period?, ratePerHour?}`. */
  options: string;
  created_at: string;
}

/** One mail (0005): `pending` until sent, `sent`, or `suppressed` by the rule's rate limit. */
export interface AlertOutboxTable {
  id: Generated<number>;
  dedup_key: string;
  rule_id: number;
  recipient: string;
  language: string;
  subject: string;
  body: string;
  state: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  sent_at: string | null;
}

/** The evaluator's cursor over `events.forward_order`, with its lease (0005). */
export interface AlertStateTable {
  name: string;
  event_cursor: number | string;
  lease_owner: string | null;
  lease_until: string | null;
}

/** A retention setting (0006): `events` keeps events this many years; no row keeps everything. */
export interface RetentionSettingsTable {
  name: string;
  years: number;
  updated_at: string;
  updated_by: string;
}

/**
 * Where a terminal's stored chain starts after retention pruned what came before (0006): the seq,
 * hash and time of the last pruned event, signed with the policy-signing key (`public_key`).
 */
export interface ChainCheckpointsTable {
  agent_id: string;
  seq: number | string;
  hash: string;
  at: string;
  pruned_at: string;
  public_key: string;
  signature: string;
}

export interface Database {
  agents: AgentsTable;
  enrollment_tokens: EnrollmentTokensTable;
  events: EventsTable;
  inventory_latest: InventoryLatestTable;
  inventory_history: InventoryHistoryTable;
  policies: PoliciesTable;
  keys: KeysTable;
  key_rotations: KeyRotationsTable;
  admins: AdminsTable;
  audit_log: AuditLogTable;
  incidents: IncidentsTable;
  exceptions: ExceptionsTable;
  console_sessions: ConsoleSessionsTable;
  forward_destinations: ForwardDestinationsTable;
  forward_counters: ForwardCountersTable;
  alert_smtp: AlertSmtpTable;
  alert_rules: AlertRulesTable;
  alert_outbox: AlertOutboxTable;
  alert_state: AlertStateTable;
  retention_settings: RetentionSettingsTable;
  chain_checkpoints: ChainCheckpointsTable;
}
