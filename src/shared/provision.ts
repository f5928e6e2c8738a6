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

/** The installer parameter that sets each field, as IT types it on the command line. */
export const PROVISION_PARAMETERS: Readonly<Record<keyof Provision, string>> = {
  collectorUrl: 'COLLECTOR',
  token: 'TOKEN',
  segment: 'SEGMENT',
  collectorPublicKey: 'PUBKEY',
};

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
 * other arguments (`/S`, `/D=…`, `/qn`) are ignored, and so is an empty value (an MSI passes
 * `COLLECTOR=` for a property nobody set). Returns only the keys it found.
 */
export function provisionFromArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const m = /^\/?([A-Za-z]+)=(.*)$/s.exec(arg.trim());
    if (!m) continue;
    const key = KEYS[m[1]!.toLowerCase()];
    const value = m[2]!.replace(/^"(.*)"$/s, '$1').trim();
    if (key && value !== '') out[key] = value;
  }
  return out;
}

/**
 * The problems of a provision as IT reads them, in Japanese (the installer's first language) and
 * English. One catalogue, so every installer shows the same words.
 */
const MESSAGES = {
  ja: {
    heading: 'インストール設定（プロビジョニング）が不正です',
    collectorUrl: 'COLLECTOR（コレクターの URL）は https:// で始まる URL にしてください（例: https://mamori.example.lg.jp:8765）',
    token: 'TOKEN（登録トークン）がないか短すぎます（mamori collector token create で発行したもの）',
    segment: 'SEGMENT（区分）は mynumber・lgwan・internet のいずれかにしてください',
    collectorPublicKey: 'PUBKEY（コレクターの公開鍵）は base64 の SPKI 公開鍵にしてください',
    unknown: '不明な項目があります',
    missing: 'がありません',
    label: {
      collectorUrl: 'COLLECTOR（コレクターの URL）',
      token: 'TOKEN（登録トークン）',
      segment: 'SEGMENT（区分）',
      collectorPublicKey: 'PUBKEY（コレクターの公開鍵）',
    },
  },
} as const;

/** The message an installer shows when the provision is invalid, ja first, en second, one line. */
function describeProblems(value: unknown, issues: readonly z.core.$ZodIssue[]): string {
  const given = value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  const ja: string[] = [];
  const en: string[] = [];
  for (const issue of issues) {
    const field = issue.path[0];
    if (typeof field === 'string' && field in PROVISION_PARAMETERS) {
      const key = field as keyof Provision;
      // A field not given at all is named as the parameter IT forgot, not as a wrong value.
      const missing = given[key] === undefined;
      const text = missing ? `${MESSAGES.ja.label[key]}${MESSAGES.ja.missing}` : MESSAGES.ja[key];
      if (!ja.includes(text)) ja.push(text);
      en.push(`${key}: ${missing ? `missing (${PROVISION_PARAMETERS[key]})` : issue.message}`);
      continue;
    }
    if (issue.code === 'unrecognized_keys') ja.push(`${MESSAGES.ja.unknown}: ${issue.keys.join(', ')}`);
    en.push(issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message);
  }
  return `${MESSAGES.ja.heading}: ${ja.join('、')} / invalid provisioning: ${en.join('; ')}`;
}

/**
 * Validates a provision, naming every problem in one line (Japanese, then English).
 * @throws Error with a message an installer can show as it is.
 */
export function parseProvision(value: unknown): Provision {
  const result = Provision.safeParse(value);
  if (result.success) return result.data;
  throw new Error(describeProblems(value, result.error.issues));
}

/**
 * What `mamori agent provision` tells the installer (and so IT), Japanese first, English second,
 * on one line. `{…}` placeholders are filled from `vars`.
 */
const OUTCOMES = {
  stored: {
    ja: 'インストール設定を保存しました。サービスの初回起動時にコレクター {url} に登録します（区分 {segment}{pinnedJa}）',
    en: 'provisioned: the service enrolls with {url} on its first start (segment {segment}{pinned})',
  },
  enrolled: {
    ja: 'この端末は登録済みです（{agentId}、区分 {segment}、{url}）。インストール設定は使わず、登録と記録をそのまま引き継ぎます',
    en: 'already enrolled as {agentId} in segment {segment} with {url}; the installer provision is not used, enrollment and data are kept',
  },
  pending: {
    ja: '前回のインストール設定（{url}、区分 {segment}）がサービスの初回起動を待っています',
    en: 'a provision from an earlier install ({url}, segment {segment}) is waiting for the service to start',
  },
  missing: {
    ja: 'インストール設定がありません。COLLECTOR・TOKEN・SEGMENT を指定するか、インストーラーと同じフォルダーに mamori-provision.json を置いてください',
    en: 'no provisioning: pass COLLECTOR, TOKEN and SEGMENT, or put a mamori-provision.json beside the installer',
  },
  unreadable: {
    ja: '{file} を読めません（{reason}）',
    en: 'cannot read {file}: {reason}',
  },
} as const;

/** An outcome of installer provisioning, as one `日本語 / English` line. */
export function provisionText(id: keyof typeof OUTCOMES, vars: Record<string, string> = {}): string {
  const fill = (text: string) => text.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? '');
  return `${fill(OUTCOMES[id].ja)} / ${fill(OUTCOMES[id].en)}`;
}
