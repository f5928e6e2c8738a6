import { z } from 'zod';
import { Segment, UntrustedText } from './common';
import { StoredEvent } from './events';
import { KeyRotation, Policy, PolicyFreshness } from './policy';

/** The largest seq a collector stores (its seq columns are PostgreSQL `integer`). */
export const MAX_STORED_SEQ = 2_147_483_647;

/** The largest batch an agent sends and a collector accepts. */
export const MAX_BATCH_EVENTS = 500;

/** `POST /api/v1/enroll` request. */
export const EnrollRequest = z.object({
  token: z.string().min(1).max(200),
  hostname: UntrustedText.pipe(z.string().min(1)),
  machineId: z.string().min(1).max(200),
});
export type EnrollRequest = z.infer<typeof EnrollRequest>;

/** `POST /api/v1/enroll` response. */
export const EnrollResponse = z.object({
  agentId: z.string().min(1).max(100),
  /** Bearer token of the agent; the collector keeps only its hash. */
  agentToken: z.string().min(1).max(200),
  segment: Segment,
  policy: Policy,
  /** The collector's Ed25519 public key (SPKI DER, base64), pinned by the agent. */
  collectorPublicKey: z.string().min(1).max(200),
  /** The per-agent secret (base64) that offline unlock codes are an HMAC under. */
  unlockSecret: z.string().min(1).max(200),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;

/** `POST /api/v1/agents/{agentId}/events` request: events in ascending seq. */
export const EventBatch = z.object({
  events: z.array(StoredEvent).min(1).max(MAX_BATCH_EVENTS),
});
export type EventBatch = z.infer<typeof EventBatch>;

/** `POST /api/v1/agents/{agentId}/events` response: every seq up to `ackSeq` is stored. */
export const EventBatchAck = z.object({ ackSeq: z.number().int().min(0) });
export type EventBatchAck = z.infer<typeof EventBatchAck>;

/**
 * `GET /api/v1/agents/{agentId}/policy` response: the signed policy document of the agent's
 * segment, as docs/design.md#policy-document shows it, plus two fields outside the signed document:
 * `freshness`, the collector's signed word that this version is current now, and `rotations`, the
 * key rotations since the first key, oldest first, for agents that pinned an older key.
 */
export const PolicyResponse = Policy.extend({
  freshness: PolicyFreshness,
  rotations: z.array(KeyRotation).max(100).default([]),
});
export type PolicyResponse = z.infer<typeof PolicyResponse>;

/** The signed document of a policy response, without the fields that travel beside it. */
export function policyOfResponse(response: PolicyResponse): Policy {
  const { freshness: _freshness, rotations: _rotations, ...policy } = response;
  return policy;
}

/**
 * The header every agent call carries: `<seq>:<hash>` of the agent's newest event. The collector
 * keeps the highest one seen and flags a chain that does not extend it.
 */
export const HEAD_HEADER = 'mamori-head';

/** Reads a `mamori-head` value; null when it is malformed. */
export function parseHead(value: string): { seq: number; hash: string } | null {
  const match = /^(\d{1,15}):([0-9a-f]{64})$/.exec(value.trim());
  if (!match || Number(match[1]) > MAX_STORED_SEQ) return null;
  return { seq: Number(match[1]), hash: match[2]! };
}

/** `GET /api/v1/agents/{agentId}/exceptions`: approvals the agent applies at its next sync. */
export const ApprovedException = z.object({
  requestId: z.string().max(100),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type ApprovedException = z.infer<typeof ApprovedException>;
