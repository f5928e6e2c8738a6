import { MODES, SEGMENTS, type Policy, type Segment } from '../../../../shared';
import { entryLabel, policyChanges, type DraftErrors, type PolicyDraft } from '../../policy-form';
import { labelOr } from '../../messages';
import { Empty, Facts, PostForm, Table, segmentName, Time } from '../components';
import { Layout } from '../layout';
import type { View } from '../view';

export interface PolicySummary {
  segment: Segment;
  policy: Policy;
  by: string;
  terminals: number;
}

export interface HistoryEntry {
  version: number;
  issuedAt: string;
  by: string;
  mode: string;
  allowCount: number;
}

export function PoliciesPage({ v, summaries }: { v: View; summaries: PolicySummary[] }) {
  return (
    <Layout v={v} title={v.t('policies.title')}>
      <div class="grid3">
        {summaries.map((s) => (
          <section class={`card seg-card seg-${s.segment}`}>
            <h2>{segmentName(v, s.segment)}</h2>
            <p class={`mode mode-${s.policy.removableMedia.mode}`}>
              {v.t('policies.mode')}: <strong>{v.t(`mode.${s.policy.removableMedia.mode}`)}</strong>
            </p>
            <Facts
              items={[
                [v.t('policies.version'), `v${s.policy.version}`],
                [v.t('policies.issuedAt'), <Time v={v} at={s.policy.issuedAt} />],
                [v.t('policies.issuedBy'), s.by],
                [v.t('policies.allowlist'), v.t('policies.allowCount', { n: s.policy.removableMedia.allow.length })],
                [v.t('nav.terminals'), v.t('policies.terminals', { n: s.terminals })],
              ]}
            />
            <a class="button-link primary" href={`/policies/${s.segment}`}>
              {v.t('policies.edit')}
            </a>
          </section>
        ))}
      </div>
    </Layout>
  );
}

function FieldError({ errors, name }: { errors: DraftErrors; name: string }) {
  return errors[name] ? (
    <span class="field-error" id={`err-${name.replace(/\./g, '-')}`}>
      {errors[name]}
    </span>
  ) : null;
}

/** Attributes that mark a field invalid and point at its message. */
const invalid = (errors: DraftErrors, name: string) =>
  errors[name] ? { 'aria-invalid': 'true' as const, 'aria-describedby': `err-${name.replace(/\./g, '-')}` } : {};

/** Spare empty rows under the allowlist, so a few can be added without script. */
const SPARE_ROWS = 3;

/** The allowlist rows of the policy form, with a few spare rows to fill in. */
function AllowlistFieldset({ v, rows, errors }: { v: View; rows: PolicyDraft['allow']; errors: DraftErrors }) {
  return (
    <fieldset>
      <legend>{v.t('policies.allowlist')}</legend>
      <p class="hint">{v.t('policies.allowlist.help')}</p>
      <table class="table allowlist" id="allowlist">
        <thead>
          <tr>
            <th scope="col">{v.t('policies.vendorId')}</th>
            <th scope="col">{v.t('policies.productId')}</th>
            <th scope="col">{v.t('policies.serial')}</th>
            <th scope="col">{v.t('policies.note')}</th>
            <th scope="col">{v.t('policies.remove')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr data-row={i}>
              <td>
                <input
                  name={`allow.${i}.vendorId`}
                  value={r.vendorId}
                  maxLength={4}
                  size={5}
                  class="mono"
                  aria-label={`${v.t('policies.vendorId')} ${i + 1}`}
                  {...invalid(errors, `allow.${i}.vendorId`)}
                />
                <FieldError errors={errors} name={`allow.${i}.vendorId`} />
              </td>
              <td>
                <input
                  name={`allow.${i}.productId`}
                  value={r.productId}
                  maxLength={4}
                  size={5}
                  class="mono"
                  aria-label={`${v.t('policies.productId')} ${i + 1}`}
                  {...invalid(errors, `allow.${i}.productId`)}
                />
                <FieldError errors={errors} name={`allow.${i}.productId`} />
              </td>
              <td>
                <input
                  name={`allow.${i}.serial`}
                  value={r.serial}
                  maxLength={255}
                  class="mono"
                  aria-label={`${v.t('policies.serial')} ${i + 1}`}
                  {...invalid(errors, `allow.${i}.serial`)}
                />
                <FieldError errors={errors} name={`allow.${i}.serial`} />
              </td>
              <td>
                <input
                  name={`allow.${i}.note`}
                  value={r.note}
                  maxLength={1024}
                  aria-label={`${v.t('policies.note')} ${i + 1}`}
                  {...invalid(errors, `allow.${i}.note`)}
                />
                <FieldError errors={errors} name={`allow.${i}.note`} />
              </td>
              <td class="center">
                <input type="checkbox" name={`allow.${i}.remove`} value="1" aria-label={`${v.t('policies.remove')} ${i + 1}`} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" class="add-row" data-add-row="allowlist" hidden>
        {v.t('policies.addRow')}
      </button>
    </fieldset>
  );
}

export function PolicyEditPage({
  v,
  segment,
  current,
  by,
  draft,
  errors,
  history,
  terminals,
}: {
  v: View;
  segment: Segment;
  current: Policy;
  by: string;
  draft: PolicyDraft;
  errors: DraftErrors;
  history: HistoryEntry[];
  terminals: number;
}) {
  const rows = [...draft.allow, ...Array.from({ length: SPARE_ROWS }, () => ({ vendorId: '', productId: '', serial: '', note: '' }))];
  return (
    <Layout v={v} title={v.t('policies.editTitle', { segment: segmentName(v, segment) })} active="policies">
      <p>
        <a href="/policies">{v.t('common.back')}</a>
      </p>
      <p class="hint">
        {v.t('policies.current', { v: current.version, at: v.fmt.dateTime(current.issuedAt), by })} · {v.t('policies.terminals', { n: terminals })}
      </p>
      {Object.keys(errors).length > 0 ? (
        <div class="flash error" role="alert">
          <p>{errors.form ?? v.t('policies.err.summary')}</p>
        </div>
      ) : null}
      <PostForm v={v} action={`/policies/${segment}/preview`} class="card policy-form">
        <fieldset>
          <legend>{v.t('policies.mode')}</legend>
          {MODES.map((m) => (
            <label class="radio" for={`mode-${m}`}>
              <input type="radio" id={`mode-${m}`} name="mode" value={m} checked={draft.mode === m} />
              <span>
                <strong>{v.t(`mode.${m}`)}</strong>
                <small>{v.t(`mode.${m}.help`)}</small>
              </span>
            </label>
          ))}
          <FieldError errors={errors} name="mode" />
        </fieldset>
        <AllowlistFieldset v={v} rows={rows} errors={errors} />
        <fieldset>
          <label for="syncIntervalSeconds">
            <span>{v.t('policies.syncInterval')}</span>
            <input
              id="syncIntervalSeconds"
              name="syncIntervalSeconds"
              inputMode="numeric"
              value={draft.syncIntervalSeconds}
              size={8}
              {...invalid(errors, 'syncIntervalSeconds')}
            />
            <FieldError errors={errors} name="syncIntervalSeconds" />
          </label>
          <label for="incidentContact">
            <span>{v.t('policies.incidentContact')}</span>
            <input
              id="incidentContact"
              name="incidentContact"
              value={draft.incidentContact}
              maxLength={500}
              class="wide"
              {...invalid(errors, 'incidentContact')}
            />
            <FieldError errors={errors} name="incidentContact" />
          </label>
        </fieldset>
        <button type="submit" class="primary">
          {v.t('policies.preview')}
        </button>
      </PostForm>
      <section class="card">
        <h2>{v.t('policies.history')}</h2>
        <HistoryTable v={v} segment={segment} history={history} />
      </section>
    </Layout>
  );
}

function HistoryTable({ v, segment, history }: { v: View; segment: Segment; history: HistoryEntry[] }) {
  return (
    <Table
      v={v}
      id="history"
      rows={history}
      columns={[
        { head: v.t('policies.version'), cell: (h) => `v${h.version}` },
        { head: v.t('policies.issuedAt'), cell: (h) => <Time v={v} at={h.issuedAt} /> },
        { head: v.t('policies.issuedBy'), cell: (h) => h.by },
        { head: v.t('policies.mode'), cell: (h) => labelOr(v.t, `mode.${h.mode}`, h.mode) },
        { head: v.t('policies.allowlist'), class: 'num', cell: (h) => h.allowCount },
        { head: '', cell: (h) => <a href={`/policies/${segment}/versions/${h.version}`}>{v.t('policies.view')}</a> },
      ]}
    />
  );
}

export function PolicyPreviewPage({
  v,
  segment,
  current,
  input,
  document,
  terminals,
}: {
  v: View;
  segment: Segment;
  current: Policy;
  input: Parameters<typeof policyChanges>[1];
  document: string;
  terminals: number;
}) {
  const changes = policyChanges(current, input, v.t);
  return (
    <Layout v={v} title={v.t('policies.previewTitle', { segment: segmentName(v, segment) })} active="policies">
      <section class="card">
        {changes.length === 0 ? (
          <p class="empty">{v.t('policies.nochange')}</p>
        ) : (
          <ul class="changes" id="changes">
            {changes.map((c) => (
              <li class="untrusted">{c}</li>
            ))}
          </ul>
        )}
        <p>{v.t('policies.affects', { n: terminals, interval: current.syncIntervalSeconds })}</p>
        <div class="actions">
          <PostForm v={v} action={`/policies/${segment}`} class="inline">
            <input type="hidden" name="document" value={document} />
            <input type="hidden" name="baseVersion" value={String(current.version)} />
            <button type="submit" class="primary" disabled={changes.length === 0}>
              {v.t('policies.apply')}
            </button>
          </PostForm>
          <PostForm v={v} action={`/policies/${segment}/edit`} class="inline">
            <input type="hidden" name="document" value={document} />
            <button type="submit">{v.t('policies.back')}</button>
          </PostForm>
        </div>
      </section>
    </Layout>
  );
}

export function PolicyVersionPage({ v, segment, policy, previous, by }: { v: View; segment: Segment; policy: Policy; previous: Policy | null; by: string }) {
  const changes = previous ? policyChanges(previous, policy, v.t) : [];
  return (
    <Layout v={v} title={v.t('policies.versionTitle', { segment: segmentName(v, segment), v: policy.version })} active="policies">
      <p>
        <a href={`/policies/${segment}`}>{v.t('common.back')}</a>
      </p>
      <section class="card">
        <Facts
          items={[
            [v.t('policies.mode'), v.t(`mode.${policy.removableMedia.mode}`)],
            [v.t('policies.issuedAt'), <Time v={v} at={policy.issuedAt} />],
            [v.t('policies.issuedBy'), by],
            [v.t('policies.syncInterval'), String(policy.syncIntervalSeconds)],
            [v.t('policies.incidentContact'), <span class="untrusted">{policy.incidentContact}</span>],
            [v.t('policies.signature'), <span class="mono wrap">{policy.signature}</span>],
          ]}
        />
        <h2>{v.t('policies.allowlist')}</h2>
        {policy.removableMedia.allow.length === 0 ? (
          <Empty v={v} />
        ) : (
          <ul>
            {policy.removableMedia.allow.map((a) => (
              <li class="untrusted">{entryLabel(a, v.t)}</li>
            ))}
          </ul>
        )}
        {previous ? (
          <>
            <h2>v{previous.version} →</h2>
            {changes.length === 0 ? (
              <p class="empty">{v.t('policies.nochange')}</p>
            ) : (
              <ul class="changes">
                {changes.map((c) => (
                  <li class="untrusted">{c}</li>
                ))}
              </ul>
            )}
          </>
        ) : null}
        <a class="button-link" href={`/policies/${segment}?from=${policy.version}`}>
          {v.t('policies.restore')}
        </a>
      </section>
    </Layout>
  );
}

export const isSegment = (s: string): s is Segment => (SEGMENTS as readonly string[]).includes(s);
