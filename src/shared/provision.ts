import { z } from 'zod';
import { Segment } from './common';

/**
 * What an installer hands the agent so it enrolls itself on first start: from the command line
 * (NSIS `/COLLECTOR= /TOKEN= /SEGMENT= /PUBKEY=`, MSI properties `COLLECTOR= TOKEN= SEGMENT=
 * PUBKEY=`) or a `mamori-provision.json` beside the installer.
 */
export const Provision = z
  .object({
    collectorUrl: z
      .string()
      .trim()
      .url('collectorUrl must be a URL such as https://mamori.example.lg.jp:8765')
      .refine((u) => /^https?:\/\//i.test(u), 'collectorUrl must start with https:// (or http://)'),
    token: z.string().trim().min(8, 'token is missing or too short (from `mamori collector token create`)').max(200),
    segment: Segment,
    /** The collector's public key (SPKI DER, base64) to pin; enrollment fails if it differs. */
    collectorPublicKey: z.string().trim().min(40).max(200).optional(),
  })
  .strict();
export type Provision = z.infer<typeof Provision>;

const KEYS: Record<string, keyof Provision> = {
  collector: 'collectorUrl',
  collectorurl: 'collectorUrl',
  token: 'token',
  segment: 'segment',
  pubkey: 'collectorPublicKey',
  collectorpublickey: 'collectorPublicKey',
};

/**
 * Reads installer arguments, NSIS style (`/COLLECTOR=https://…`) or MSI style (`COLLECTOR=…`);
 * other arguments (`/S`, `/D=…`, `/qn`) are ignored. Returns only the keys it found.
 */
export function provisionFromArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const m = /^\/?([A-Za-z]+)=(.*)$/s.exec(arg.trim());
    if (!m) continue;
    const key = KEYS[m[1]!.toLowerCase()];
    if (key) out[key] = m[2]!.replace(/^"(.*)"$/s, '$1');
  }
  return out;
}

/**
 * Validates a provision, naming every problem in one line.
 * @throws Error with a message an installer can show as it is.
 */
export function parseProvision(value: unknown): Provision {
  const result = Provision.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
  throw new Error(`invalid provisioning: ${problems.join('; ')}`);
}
