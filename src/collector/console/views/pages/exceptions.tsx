import { formatScope, isExactScope, type ExceptionScope } from '../../../../shared';
import type { listExceptions } from '../../../exceptions';
import { ExceptionStatusBadge, PostForm, Table, TerminalLink, Time, deviceLabel, type Column } from '../components';
import { Layout } from '../layout';
import type { View } from '../view';

type ExceptionRow = Awaited<ReturnType<typeof listExceptions>>[number];

/** The durations an approval offers, in minutes. */
export const DURATIONS = [30, 60, 120, 240, 480, 1440, 4320, 10080] as const;

export function durationLabel(v: View, minutes: number): string {
  if (minutes % 1440 === 0) return v.t('common.days', { n: minutes / 1440 });
  if (minutes % 60 === 0) return v.t('common.hours', { n: minutes / 60 });
  return v.t('common.minutes', { n: minutes });
}

function DurationSelect({ v, name, chosen, id }: { v: View; name: string; chosen: number; id: string }) {
  const options = DURATIONS.includes(chosen as (typeof DURATIONS)[number]) ? [...DURATIONS] : [...DURATIONS, chosen].sort((a, b) => a - b);
  return (
    <select name={name} id={id} aria-label={v.t('exceptions.duration')}>
      {options.map((m) => (
        <option value={String(m)} selected={m === chosen}>
          {durationLabel(v, m)}
        </option>
      ))}
    </select>
  );
}

/**
 * The exact scope an approver decides on: `0781:5583 serial 4C530001` or `0781:5583 port 1-2`;
 * a request from an older agent that names less is shown with the warning that it cannot be unlocked.
 */
function scopeLabel(device: unknown): string {
  const d = (device ?? {}) as Partial<ExceptionScope>;
  return isExactScope(d) ? formatScope(d) : `${deviceLabel(d as Record<string, unknown>)} (!)`;
}

/** The columns both lists share: when, which terminal, which device, why. */
function requestColumns(v: View): Column<ExceptionRow>[] {
  return [
    { head: v.t('exceptions.requestedAt'), cell: (e) => <Time v={v} at={e.requestedAt} /> },
    { head: v.t('exceptions.terminal'), cell: (e) => <TerminalLink v={v} id={e.agentId} hostname={e.hostname} segment={e.segment} /> },
    { head: v.t('exceptions.device'), class: 'untrusted', cell: (e) => scopeLabel(e.device) },
    { head: v.t('exceptions.reason'), class: 'untrusted prewrap', cell: (e) => e.reason },
  ];
}

function Decision({ v, e }: { v: View; e: ExceptionRow }) {
  return (
    <>
      <PostForm v={v} action={`/exceptions/${encodeURIComponent(e.id)}/approve`} class="inline">
        <DurationSelect v={v} name="minutes" chosen={e.minutes} id={`minutes-${e.id}`} />
        <button type="submit" class="primary">
          {v.t('exceptions.approve')}
        </button>
      </PostForm>
      <PostForm v={v} action={`/exceptions/${encodeURIComponent(e.id)}/deny`} class="inline" confirm={v.t('exceptions.deny')}>
        <button type="submit" class="danger">
          {v.t('exceptions.deny')}
        </button>
      </PostForm>
    </>
  );
}

export function ExceptionsPage({ v, pending, decided }: { v: View; pending: ExceptionRow[]; decided: ExceptionRow[] }) {
  const rowAttrs = (e: ExceptionRow) => ({ 'data-request': e.id });
  return (
    <Layout v={v} title={v.t('exceptions.title')}>
      <section class="card">
        <h2>{v.t('exceptions.pending')}</h2>
        <Table
          v={v}
          id="pending"
          rows={pending}
          rowAttrs={rowAttrs}
          columns={[
            ...requestColumns(v),
            { head: v.t('exceptions.requestedMinutes'), cell: (e) => durationLabel(v, e.minutes) },
            { head: v.t('exceptions.requestCode'), class: 'mono', cell: (e) => e.requestCode },
            { head: '', class: 'actions', cell: (e) => <Decision v={v} e={e} /> },
          ]}
        />
      </section>

      <section class="card" id="unlock">
        <h2>{v.t('exceptions.unlock')}</h2>
        <p class="hint">{v.t('exceptions.unlock.help')}</p>
        <PostForm v={v} action="/exceptions/unlock" class="filters">
          <label for="request-code" class="grow">
            <span>{v.t('exceptions.unlock.code')}</span>
            <input
              id="request-code"
              name="requestCode"
              required
              maxLength={40}
              placeholder="XXXXX-XXXXX-XXXXXX"
              autocomplete="off"
              spellcheck={false}
              class="mono"
            />
          </label>
          <label for="unlock-device" class="grow">
            <span>{v.t('exceptions.unlock.device')}</span>
            <input
              id="unlock-device"
              name="device"
              maxLength={300}
              placeholder="0781:5583 serial 4C530001"
              autocomplete="off"
              spellcheck={false}
              class="mono"
            />
          </label>
          <label for="unlock-minutes">
            <span>{v.t('exceptions.duration')}</span>
            <DurationSelect v={v} name="minutes" chosen={60} id="unlock-minutes" />
          </label>
          <button type="submit" class="primary">
            {v.t('exceptions.unlock.submit')}
          </button>
        </PostForm>
      </section>

      <section class="card">
        <h2>{v.t('exceptions.history')}</h2>
        <Table
          v={v}
          id="decided"
          rows={decided}
          rowAttrs={rowAttrs}
          columns={[
            ...requestColumns(v),
            { head: v.t('incidents.status'), cell: (e) => <ExceptionStatusBadge v={v} status={e.status} /> },
            { head: v.t('exceptions.decidedBy'), cell: (e) => e.decidedBy ?? '' },
            { head: v.t('exceptions.expiresAt'), cell: (e) => <Time v={v} at={e.expiresAt} /> },
          ]}
        />
      </section>
    </Layout>
  );
}
