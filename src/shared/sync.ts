import { z } from 'zod';
import { Segment, UntrustedText } from './common';
import { StoredEvent } from './events';
import { Policy } from './policy';

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
 * segment, exactly as DESIGN.md shows it.
 */
export const PolicyResponse = Policy;
export type PolicyResponse = Policy;

/** `GET /api/v1/agents/{agentId}/exceptions`: approvals the agent applies at its next sync. */
export const ApprovedException = z.object({
  requestId: z.string().max(100),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type ApprovedException = z.infer<typeof ApprovedException>;
