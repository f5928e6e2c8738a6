/**
 * Every key the agent keeps in its store's `state` table, declared once (docs/design.md#agent-state-keys).
 * The store takes only these, so a misspelt key is a type error rather than a second, silent key.
 */
export const STATE_KEYS = {
  /** Highest seq the collector acknowledged (written by the store itself). */
  ackSeq: 'ack_seq',
  /** JSON `{seq, hash, at}` of the last event pruned (written by the store itself, docs/design.md#retention). */
  chainCheckpoint: 'chain.checkpoint',
  /** JSON `Enrollment` (src/agent/policy.ts). */
  enrollment: 'enrollment',
  /** The machine id made here when the OS has none. */
  machineId: 'machine.id',
  /** The last good signed policy. */
  policy: 'policy.current',
  /** SHA-256 of the last refused policy document: one `tamper.detected` per distinct document. */
  policyRejected: 'policy.rejected',
  /** The newest policy version seen signed: nothing older is accepted again. */
  policyNewestVersion: 'policy.newest_version',
  inventory: 'inventory.snapshot',
  inventoryHash: 'inventory.hash',
  inventorySentHash: 'inventory.sent_hash',
  lastSyncAt: 'sync.last_at',
  lastSyncError: 'sync.last_error',
  /** The last break of the chain recorded as `tamper.detected` before a sync. */
  syncTamperRecorded: 'sync.tamper_recorded',
  /** Why enrolling from the installer's provision last failed; empty once it worked. */
  provisionError: 'provision.last_error',
  exceptionsPending: 'exceptions.pending',
  exceptionsActive: 'exceptions.active',
  /** The terminal's own allowlist (`--allow-present`). */
  localAllow: 'allow.local',
  /** Devices and decisions last recorded. */
  enforcementKnown: 'enforcement.known',
  /** The `segment|version|state` last recorded in `policy.applied`. */
  enforcementApplied: 'enforcement.applied',
  /** What the Linux enforcer set, with the boot id. */
  enforcementSet: 'enforcement.set',
  /**
   * Drift the start-up pass corrected before the agent could record events (JSON `Drift[]`): the
   * first reconcile records it and deletes it in one transaction.
   */
  enforcementStartDrift: 'enforcement.start_drift',
  /** The last recorded failure of device hints (a warning is recorded once per distinct failure). */
  hintsFailure: 'hints.failure',
  /** The last recorded failure of the login source. */
  loginsFailure: 'logins.failure',
  /** Linux: read position of wtmp (device, inode, first record, offset). */
  loginsWtmp: 'logins.wtmp',
  /** Linux: read position of btmp. */
  loginsBtmp: 'logins.btmp',
  /** Linux: sessions still open. */
  loginsOpen: 'logins.open',
  /** Windows: last `EventRecordID` read from the Security log. */
  loginsSecurityRecord: 'logins.security.record',
  /** macOS: `last` entries already emitted. */
  loginsLastSeen: 'logins.last.seen',
  /** IPC: each user's one queued incident, merged from reports over the quota (docs/design.md#ipc-limits). */
  ipcIncidentsQueued: 'ipc.incidents.queued',
  /** IPC: wrong unlock codes counted per user in the current window. */
  ipcTamperPending: 'ipc.tamper.pending',
  /** IPC: which user caused which of the newest events, for `recentEvents`. */
  ipcOwners: 'ipc.owners',
} as const;

/** A key of the agent's state table. */
export type StateKey = (typeof STATE_KEYS)[keyof typeof STATE_KEYS];
