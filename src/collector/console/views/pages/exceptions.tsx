import type { listExceptions } from '../../../exceptions';
import { Empty, ExceptionStatusBadge, PostForm, SegmentTag, Time, deviceLabel } from '../components';
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

export function ExceptionsPage({ v, pending, decided }: { v: View; pending: ExceptionRow[]; decided: ExceptionRow[] }) {
  return (
    <Layout v={v} title={v.t('exceptions.title')}>
      <section class="card">
        <h2>{v.t('exceptions.pending')}</h2>
        {pending.length === 0 ? (
          <Empty v={v} />
        ) : (
          <table class="table" id="pending">
            <thead>
              <tr>
                <th scope="col">{v.t('exceptions.requestedAt')}</th>
                <th scope="col">{v.t('exceptions.terminal')}</th>
                <th scope="col">{v.t('exceptions.device')}</th>
                <th scope="col">{v.t('exceptions.reason')}</th>
                <th scope="col">{v.t('exceptions.requestedMinutes')}</th>
                <th scope="col">{v.t('exceptions.requestCode')}</th>
                <th scope="col" />
              </tr>
            </thead>
            <tbody>
              {pending.map((e) => (
                <tr data-request={e.id}>
                  <td>
                    <Time v={v} at={e.requestedAt} />
                  </td>
                  <td>
                    <a href={`/terminals/${encodeURIComponent(e.agentId)}`} class="untrusted">
                      {e.hostname || e.agentId}
                    </a>{' '}
                    <SegmentTag v={v} segment={e.segment} />
                  </td>
                  <td class="untrusted">{deviceLabel(e.device as Record<string, unknown>)}</td>
                  <td class="untrusted prewrap">{e.reason}</td>
                  <td>{durationLabel(v, e.minutes)}</td>
                  <td class="mono">{e.requestCode}</td>
                  <td class="actions">
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
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section class="card" id="unlock">
        <h2>{v.t('exceptions.unlock')}</h2>
        <p class="hint">{v.t('exceptions.unlock.help')}</p>
        <PostForm v={v} action="/exceptions/unlock" class="filters">
          <label for="request-code" class="grow">
            <span>{v.t('exceptions.unlock.code')}</span>
            <input id="request-code" name="requestCode" required maxLength={40} placeholder="XXXX-XXXX-XXXXX" autocomplete="off" spellcheck={false} class="mono" />
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
        {decided.length === 0 ? (
          <Empty v={v} />
        ) : (
          <table class="table" id="decided">
            <thead>
              <tr>
                <th scope="col">{v.t('exceptions.requestedAt')}</th>
                <th scope="col">{v.t('exceptions.terminal')}</th>
                <th scope="col">{v.t('exceptions.device')}</th>
                <th scope="col">{v.t('exceptions.reason')}</th>
                <th scope="col">{v.t('incidents.status')}</th>
                <th scope="col">{v.t('exceptions.decidedBy')}</th>
                <th scope="col">{v.t('exceptions.expiresAt')}</th>
              </tr>
            </thead>
            <tbody>
              {decided.map((e) => (
                <tr data-request={e.id}>
                  <td>
                    <Time v={v} at={e.requestedAt} />
                  </td>
                  <td class="untrusted">{e.hostname || e.agentId}</td>
                  <td class="untrusted">{deviceLabel(e.device as Record<string, unknown>)}</td>
                  <td class="untrusted prewrap">{e.reason}</td>
                  <td>
                    <ExceptionStatusBadge v={v} status={e.status} />
                  </td>
                  <td>{e.decidedBy ?? ''}</td>
                  <td>
                    <Time v={v} at={e.expiresAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </Layout>
  );
}
