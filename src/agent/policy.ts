import crypto from 'node:crypto';
import { Policy, policySigningPayload, sha256Hex, type Segment } from '../shared';
import type { EventStore } from './store';

/** What the agent learnt at enrollment. Kept in the store, which only the service can read. */
export interface Enrollment {
  collectorUrl: string;
  agentId: string;
  agentToken: string;
  segment: Segment;
  /** The collector's Ed25519 public key (SPKI DER, base64), pinned at enrollment. */
  collectorPublicKey: string;
  unlockSecret: string;
  enrolledAt: string;
}

const KEYS = {
  enrollment: 'enrollment',
  policy: 'policy.current',
  rejected: 'policy.rejected',
} as const;

export function loadEnrollment(store: EventStore): Enrollment | null {
  const json = store.getState(KEYS.enrollment);
  return json ? (JSON.parse(json) as Enrollment) : null;
}

export function saveEnrollment(store: EventStore, enrollment: Enrollment): void {
  store.setState(KEYS.enrollment, JSON.stringify(enrollment));
}

/** The last good policy, or null before enrollment. */
export function loadPolicy(store: EventStore): Policy | null {
  const json = store.getState(KEYS.policy);
  if (!json) return null;
  const parsed = Policy.safeParse(JSON.parse(json));
  return parsed.success ? parsed.data : null;
}

/** True when `policy.signature` is the collector's Ed25519 signature over the other fields. */
export function verifyPolicySignature(policy: Policy, publicKeyBase64: string): boolean {
  try {
    const key = crypto.createPublicKey({ key: Buffer.from(publicKeyBase64, 'base64'), format: 'der', type: 'spki' });
    return crypto.verify(null, Buffer.from(policySigningPayload(policy), 'utf8'), key, Buffer.from(policy.signature, 'base64'));
  } catch {
    return false;
  }
}

export type PolicyOutcome = 'applied' | 'unchanged' | 'rejected';

/**
 * Accepts a policy from the collector only if it verifies with the pinned key, is for this
 * terminal's segment and is not older than the one in force, and keeps it as the policy to
 * enforce. Otherwise the last good policy stays and `tamper.detected` is recorded (once per
 * distinct bad document).
 */
export function acceptPolicy(store: EventStore, candidate: unknown, enrollment: Enrollment): PolicyOutcome {
  const parsed = Policy.safeParse(candidate);
  const current = loadPolicy(store);
  let problem: string | null = null;
  if (!parsed.success) problem = 'policy document does not match the schema';
  else if (!verifyPolicySignature(parsed.data, enrollment.collectorPublicKey)) problem = 'policy signature does not verify with the pinned collector key';
  else if (parsed.data.segment !== enrollment.segment) problem = `policy is for segment ${parsed.data.segment}, this terminal is ${enrollment.segment}`;
  else if (current && parsed.data.version < current.version) problem = `policy version ${parsed.data.version} is older than version ${current.version} in force`;

  if (problem) {
    const fingerprint = sha256Hex(JSON.stringify(candidate) ?? 'undefined');
    if (store.getState(KEYS.rejected) !== fingerprint) {
      store.append({ type: 'tamper.detected', payload: { what: 'policy', detail: `${problem}; keeping version ${current?.version ?? 'none'}` } });
      store.setState(KEYS.rejected, fingerprint);
    }
    return 'rejected';
  }
  const policy = parsed.data!;
  if (current && current.version === policy.version && current.signature === policy.signature) return 'unchanged';
  // The reconciler records policy.applied once it has enforced this version.
  store.setState(KEYS.policy, JSON.stringify(policy));
  return 'applied';
}
