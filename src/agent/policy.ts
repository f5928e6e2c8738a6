import crypto from 'node:crypto';
import {
  KeyRotation,
  POLICY_FRESHNESS_MAX_AGE_MS,
  Policy,
  PolicyFreshness,
  freshnessSigningPayload,
  policySigningPayload,
  rotationSigningPayload,
  sha256Hex,
  systemClock,
  type Clock,
  type Segment,
} from '../shared';
import { STATE_KEYS } from './state-keys';
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

export function loadEnrollment(store: EventStore): Enrollment | null {
  const json = store.getState(STATE_KEYS.enrollment);
  return json ? (JSON.parse(json) as Enrollment) : null;
}

export function saveEnrollment(store: EventStore, enrollment: Enrollment): void {
  store.setState(STATE_KEYS.enrollment, JSON.stringify(enrollment));
}

/** The last good policy, or null before enrollment. */
export function loadPolicy(store: EventStore): Policy | null {
  const json = store.getState(STATE_KEYS.policy);
  if (!json) return null;
  const parsed = Policy.safeParse(JSON.parse(json));
  return parsed.success ? parsed.data : null;
}

function verifyWith(payload: string, signature: string, publicKeyBase64: string): boolean {
  try {
    const key = crypto.createPublicKey({ key: Buffer.from(publicKeyBase64, 'base64'), format: 'der', type: 'spki' });
    return crypto.verify(null, Buffer.from(payload, 'utf8'), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** True when `policy.signature` is the collector's Ed25519 signature over the other fields. */
export function verifyPolicySignature(policy: Policy, publicKeyBase64: string): boolean {
  return verifyWith(policySigningPayload(policy), policy.signature, publicKeyBase64);
}

/** True when `key` is an Ed25519 public key in SPKI DER, base64: what `--pubkey` takes. */
export function isEd25519PublicKey(key: string): boolean {
  try {
    return crypto.createPublicKey({ key: Buffer.from(key, 'base64'), format: 'der', type: 'spki' }).asymmetricKeyType === 'ed25519';
  } catch {
    return false;
  }
}

/**
 * The key the pinned one hands over to along the signed rotations (each signed by the key it
 * replaces), or the pinned key itself when no valid rotation starts from it.
 */
export function followRotations(pinned: string, rotations: readonly KeyRotation[]): string {
  let key = pinned;
  for (let step = 0; step < rotations.length; step++) {
    const next = rotations.find((r) => r.previousPublicKey === key && verifyWith(rotationSigningPayload(r), r.signature, key));
    if (!next) break;
    key = next.publicKey;
  }
  return key;
}

/** A key's id in events: SHA-256 of its SPKI bytes. */
const keyId = (key: string) => crypto.createHash('sha256').update(Buffer.from(key, 'base64')).digest('hex');

export type PolicyOutcome = 'applied' | 'unchanged' | 'rejected';

export interface AcceptOptions {
  /** The agent's clock, for the freshness bound. */
  clock?: Clock;
  /**
   * A policy from `GET …/policy` must come with a fresh signed statement; the one in the enrollment
   * response, read from the collector the terminal is pinning right then, need not.
   */
  requireFreshness?: boolean;
}

type Verdict = { problem: string; code: string } | { policy: Policy; key: string };

function judge(store: EventStore, candidate: unknown, enrollment: Enrollment, opts: AcceptOptions, current: Policy | null): Verdict {
  const body = candidate && typeof candidate === 'object' && !Array.isArray(candidate) ? (candidate as Record<string, unknown>) : null;
  const { freshness: rawFreshness, rotations: rawRotations, ...document } = body ?? {};
  const parsed = body ? Policy.safeParse(document) : null;
  if (!parsed?.success) return { code: 'schema', problem: 'policy document does not match the schema' };
  const policy = parsed.data;
  const rotations = KeyRotation.array().max(100).safeParse(rawRotations ?? []);
  const key = rotations.success ? followRotations(enrollment.collectorPublicKey, rotations.data) : enrollment.collectorPublicKey;
  if (!verifyPolicySignature(policy, key)) return { code: `signature:${policy.version}`, problem: 'policy signature does not verify with the pinned collector key' };
  if (policy.segment !== enrollment.segment) return { code: `segment:${policy.version}`, problem: `policy is for segment ${policy.segment}, this terminal is ${enrollment.segment}` };
  const newest = Math.max(current?.version ?? 0, Number(store.getState(STATE_KEYS.policyNewestVersion) ?? 0));
  if (policy.version < newest) return { code: `older:${policy.version}`, problem: `policy version ${policy.version} is older than version ${newest} already seen` };
  if (opts.requireFreshness !== false || rawFreshness !== undefined) {
    const freshness = PolicyFreshness.safeParse(rawFreshness);
    if (!freshness.success) return { code: `freshness:${policy.version}`, problem: 'policy came without a valid freshness statement' };
    const f = freshness.data;
    if (!verifyWith(freshnessSigningPayload(f), f.signature, key)) return { code: `freshness-signature:${policy.version}`, problem: 'policy freshness statement does not verify with the pinned collector key' };
    if (f.segment !== policy.segment || f.version !== policy.version) return { code: `freshness-version:${policy.version}`, problem: `the collector's statement names version ${f.version} of ${f.segment}, the policy is version ${policy.version}` };
    const age = (opts.clock ?? systemClock).now().getTime() - Date.parse(f.at);
    if (Math.abs(age) > POLICY_FRESHNESS_MAX_AGE_MS) return { code: `stale:${policy.version}`, problem: `policy freshness statement of ${f.at} is more than ${POLICY_FRESHNESS_MAX_AGE_MS / 3_600_000} h from this terminal's clock (replayed, or the clock is wrong)` };
  }
  return { policy, key };
}

/**
 * Accepts a policy from the collector only if it verifies with the pinned key (or a key the pinned
 * one handed over to by a signed rotation), is for this terminal's segment, is not older than the
 * newest version seen, and comes with a signed freshness statement for its version within
 * `POLICY_FRESHNESS_MAX_AGE_MS`. Otherwise the last good policy stays and `tamper.detected` is
 * recorded, once per problem and version. Each outcome is one store transaction: its events and
 * its state together.
 */
export function acceptPolicy(store: EventStore, candidate: unknown, enrollment: Enrollment, opts: AcceptOptions = {}): PolicyOutcome {
  return store.transaction(() => {
    const current = loadPolicy(store);
    const verdict = judge(store, candidate, enrollment, opts, current);
    if ('problem' in verdict) {
      const fingerprint = sha256Hex(verdict.code);
      if (store.getState(STATE_KEYS.policyRejected) !== fingerprint) {
        store.append({ type: 'tamper.detected', payload: { what: 'policy', detail: `${verdict.problem}; keeping version ${current?.version ?? 'none'}` } });
        store.setState(STATE_KEYS.policyRejected, fingerprint);
      }
      return 'rejected';
    }
    const { policy, key } = verdict;
    if (key !== enrollment.collectorPublicKey) {
      // Pinned from now on: the old key's signature over the change is what made it trusted.
      saveEnrollment(store, { ...enrollment, collectorPublicKey: key });
      store.append({ type: 'policy.key_rotated', payload: { previousKey: keyId(enrollment.collectorPublicKey), key: keyId(key), rotatedAt: (opts.clock ?? systemClock).now().toISOString() } });
    }
    if (policy.version > Number(store.getState(STATE_KEYS.policyNewestVersion) ?? 0)) store.setState(STATE_KEYS.policyNewestVersion, String(policy.version));
    if (current && current.version === policy.version && current.signature === policy.signature) return 'unchanged';
    // The reconciler records policy.applied once it has enforced this version.
    store.setState(STATE_KEYS.policy, JSON.stringify(policy));
    return 'applied';
  });
}
