import { MODES, PolicyInput, type AllowEntry, type Policy, type RemovableMediaMode, type Segment } from '../../shared';
import type { Translate } from './messages';

/** The most allowlist rows the editor takes in one save (the schema allows 10,000 in all). */
export const MAX_ROWS = 2000;

/** The editor's fields as typed, before validation. */
export interface PolicyDraft {
  mode: string;
  syncIntervalSeconds: string;
  incidentContact: string;
  allow: { vendorId: string; productId: string; serial: string; note: string }[];
}

export type DraftErrors = Record<string, string>;

const field = (body: Record<string, unknown>, name: string): string => {
  const value = body[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : '';
};

/** The draft a form submitted: `allow.N.vendorId` … rows, skipping rows marked for removal and blank rows. */
export function draftFromForm(body: Record<string, unknown>): PolicyDraft {
  const indexes = new Set<number>();
  for (const key of Object.keys(body)) {
    const m = /^allow\.(\d{1,5})\./.exec(key);
    if (m) indexes.add(Number(m[1]));
  }
  const allow = [...indexes]
    .sort((a, b) => a - b)
    .slice(0, MAX_ROWS)
    .filter((i) => !field(body, `allow.${i}.remove`))
    .map((i) => ({
      vendorId: field(body, `allow.${i}.vendorId`).trim(),
      productId: field(body, `allow.${i}.productId`).trim(),
      serial: field(body, `allow.${i}.serial`).trim(),
      note: field(body, `allow.${i}.note`),
    }))
    .filter((r) => r.vendorId || r.productId || r.serial || r.note.trim());
  return { mode: field(body, 'mode'), syncIntervalSeconds: field(body, 'syncIntervalSeconds').trim(), incidentContact: field(body, 'incidentContact'), allow };
}

/** The draft of a signed policy, to edit it. */
export function draftFromPolicy(p: Pick<Policy, 'removableMedia' | 'syncIntervalSeconds' | 'incidentContact'>): PolicyDraft {
  return {
    mode: p.removableMedia.mode,
    syncIntervalSeconds: String(p.syncIntervalSeconds),
    incidentContact: p.incidentContact,
    allow: p.removableMedia.allow.map((a) => ({ vendorId: a.vendorId, productId: a.productId, serial: a.serial ?? '', note: a.note ?? '' })),
  };
}

const entryKey = (a: { vendorId: string; productId: string; serial?: string }) => `${a.vendorId.toLowerCase()}:${a.productId.toLowerCase()}:${a.serial ?? ''}`;

/**
 * Checks a draft field by field, with messages in the reader's language, and returns the policy
 * input when every field is right.
 */
export function validateDraft(draft: PolicyDraft, segment: Segment, t: Translate): { input: PolicyInput | null; errors: DraftErrors } {
  const errors: DraftErrors = {};
  if (!(MODES as readonly string[]).includes(draft.mode)) errors.mode = t('policies.err.mode');
  const interval = /^\d{1,6}$/.test(draft.syncIntervalSeconds) ? Number(draft.syncIntervalSeconds) : NaN;
  if (!(interval >= 10 && interval <= 86_400)) errors.syncIntervalSeconds = t('policies.err.interval');
  if (draft.incidentContact.length > 500) errors.incidentContact = t('policies.err.long', { max: 500 });
  const seen = new Set<string>();
  draft.allow.forEach((a, i) => {
    if (!/^[0-9a-fA-F]{4}$/.test(a.vendorId)) errors[`allow.${i}.vendorId`] = t('policies.err.hex');
    if (!/^[0-9a-fA-F]{4}$/.test(a.productId)) errors[`allow.${i}.productId`] = t('policies.err.hex');
    if (a.serial.length > 255) errors[`allow.${i}.serial`] = t('policies.err.long', { max: 255 });
    if (a.note.length > 1024) errors[`allow.${i}.note`] = t('policies.err.long', { max: 1024 });
    const key = entryKey({ ...a, serial: a.serial || undefined });
    if (seen.has(key)) errors[`allow.${i}.vendorId`] ??= t('policies.err.duplicate');
    seen.add(key);
  });
  if (Object.keys(errors).length > 0) return { input: null, errors };
  const parsed = PolicyInput.safeParse({
    segment,
    removableMedia: {
      mode: draft.mode as RemovableMediaMode,
      allow: draft.allow.map((a) => ({
        vendorId: a.vendorId,
        productId: a.productId,
        ...(a.serial ? { serial: a.serial } : {}),
        ...(a.note.trim() ? { note: a.note.trim() } : {}),
      })),
    },
    syncIntervalSeconds: interval,
    incidentContact: draft.incidentContact.trim(),
  });
  if (!parsed.success) return { input: null, errors: { form: parsed.error.issues[0]?.message ?? 'invalid' } };
  return { input: parsed.data, errors };
}

/** How an allowlist entry reads in a change list. */
export function entryLabel(a: AllowEntry, t: Translate): string {
  return `${a.vendorId}:${a.productId} ${a.serial ? `S/N ${a.serial}` : t('policies.anySerial')}${a.note ? ` — ${a.note}` : ''}`;
}

/** What changes between the policy in force and a new input, one line each, in the reader's language. */
export function policyChanges(
  before: Pick<Policy, 'removableMedia' | 'syncIntervalSeconds' | 'incidentContact'>,
  after: Pick<PolicyInput, 'removableMedia' | 'syncIntervalSeconds' | 'incidentContact'>,
  t: Translate,
): string[] {
  const lines: string[] = [];
  if (before.removableMedia.mode !== after.removableMedia.mode) {
    lines.push(t('policies.diff.mode', { from: t(`mode.${before.removableMedia.mode}`), to: t(`mode.${after.removableMedia.mode}`) }));
  }
  const full = (a: AllowEntry) => `${entryKey(a)}:${a.note ?? ''}`;
  const beforeKeys = new Set(before.removableMedia.allow.map(full));
  const afterKeys = new Set(after.removableMedia.allow.map(full));
  for (const a of after.removableMedia.allow) if (!beforeKeys.has(full(a))) lines.push(t('policies.diff.added', { entry: entryLabel(a, t) }));
  for (const a of before.removableMedia.allow) if (!afterKeys.has(full(a))) lines.push(t('policies.diff.removed', { entry: entryLabel(a, t) }));
  if (before.syncIntervalSeconds !== after.syncIntervalSeconds)
    lines.push(t('policies.diff.interval', { from: before.syncIntervalSeconds, to: after.syncIntervalSeconds }));
  if (before.incidentContact !== after.incidentContact) lines.push(t('policies.diff.contact', { from: before.incidentContact, to: after.incidentContact }));
  return lines;
}
