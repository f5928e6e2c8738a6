import { z } from 'zod';
import { canonicalJson } from './canonical-json';
import { Segment, Timestamp, UntrustedText, UsbId } from './common';

/** What a segment does with removable media (外部記録媒体). */
export const MODES = ['block', 'readonly', 'audit', 'allow'] as const;
export const RemovableMediaMode = z.enum(MODES);
export type RemovableMediaMode = z.infer<typeof RemovableMediaMode>;

/** One allowlist entry (登録媒体): vendor and product id, and the serial when given. */
export const AllowEntry = z.object({
  vendorId: UsbId,
  productId: UsbId,
  serial: z.string().trim().min(1).max(255).optional(),
  note: UntrustedText.optional(),
});
export type AllowEntry = z.infer<typeof AllowEntry>;

const policyFields = {
  segment: Segment,
  removableMedia: z.object({
    mode: RemovableMediaMode,
    allow: z.array(AllowEntry).max(10_000).default([]),
  }),
  syncIntervalSeconds: z.number().int().min(10).max(86_400).default(300),
  incidentContact: z.string().max(500).default(''),
};

/** What an admin PUTs: the policy without `version`, `issuedAt` and `signature`. */
export const PolicyInput = z.object(policyFields);
export type PolicyInput = z.infer<typeof PolicyInput>;

/** A policy as issued by the collector, before signing. */
export const UnsignedPolicy = z.object({
  ...policyFields,
  version: z.number().int().min(1),
  issuedAt: Timestamp,
});
export type UnsignedPolicy = z.infer<typeof UnsignedPolicy>;

/** A signed policy document (docs/design.md#policy-document). */
export const Policy = UnsignedPolicy.extend({
  signature: z.string().min(1).max(200),
});
export type Policy = z.infer<typeof Policy>;

/** The bytes an Ed25519 policy signature covers: canonical JSON of every field but `signature`. */
export function policySigningPayload(policy: UnsignedPolicy | Policy): string {
  const { signature: _signature, ...rest } = policy as Policy;
  return canonicalJson(rest);
}

/** The default mode of each segment: mynumber blocks, lgwan reads only, internet records. */
export const DEFAULT_MODES: Record<Segment, RemovableMediaMode> = {
  mynumber: 'block',
  lgwan: 'readonly',
  internet: 'audit',
};

/** The policy a segment has before any admin has changed it. */
export function defaultPolicyInput(segment: Segment): PolicyInput {
  return {
    segment,
    removableMedia: { mode: DEFAULT_MODES[segment], allow: [] },
    syncIntervalSeconds: 300,
    incidentContact: '',
  };
}

/**
 * How old a freshness statement may be (by the agent's clock, either way) before the agent refuses
 * the policy it came with. A replayed response is refused once this much time has passed, even by
 * an agent that never saw the newer version.
 */
export const POLICY_FRESHNESS_MAX_AGE_MS = 24 * 3_600_000;

/**
 * The collector's signed word that `version` is the segment's current policy at `at`. It comes
 * with every policy the collector serves, so an old, validly signed policy replayed by a man in the
 * middle is refused: its statement names an older time or another version.
 */
export const PolicyFreshness = z.object({
  segment: Segment,
  version: z.number().int().min(1),
  at: Timestamp,
  signature: z.string().min(1).max(200),
});
export type PolicyFreshness = z.infer<typeof PolicyFreshness>;

/** The bytes a freshness signature covers; the kind keeps it from passing as any other document. */
export function freshnessSigningPayload(f: Omit<PolicyFreshness, 'signature'> | PolicyFreshness): string {
  return canonicalJson({ kind: 'mamori.policy-freshness', segment: f.segment, version: f.version, at: f.at });
}

/**
 * `collector key rotate`'s statement: the key `previousPublicKey` hands over to `publicKey`,
 * signed by the previous key. An agent moves its pinned key only along such statements.
 */
export const KeyRotation = z.object({
  previousPublicKey: z.string().min(1).max(200),
  publicKey: z.string().min(1).max(200),
  at: Timestamp,
  signature: z.string().min(1).max(200),
});
export type KeyRotation = z.infer<typeof KeyRotation>;

/** The bytes a rotation signature (by the previous key) covers. */
export function rotationSigningPayload(r: Omit<KeyRotation, 'signature'> | KeyRotation): string {
  return canonicalJson({ kind: 'mamori.key-rotation', previousPublicKey: r.previousPublicKey, publicKey: r.publicKey, at: r.at });
}
