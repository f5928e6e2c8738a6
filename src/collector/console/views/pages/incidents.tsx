import { INCIDENT_STATUSES, canMove } from '../../../incidents';
import type { listIncidents } from '../../../incidents';
import { labelOr } from '../../messages';
import type { incidentById } from '../../queries';
import { Empty, Facts, IncidentStatusBadge, PostForm, SegmentTag, Select, Time } from '../components';
import { Layout } from '../layout';
import type { View } from '../view';

type IncidentRow = Awaited<ReturnType<typeof listIncidents>>[number];
type Incident = NonNullable<Awaited<ReturnType<typeof incidentById>>>;

const category = (v: View, c: string) => labelOr(v.t, `incident.category.${c}`, c);

export function IncidentsPage({ v, rows, status }: { v: View; rows: IncidentRow[]; status?: string }) {
  const options: [string, string][] = [['', v.t('terminals.state.any')], ...INCIDENT_STATUSES.map((s): [string, string] => [s, v.t(`incident.status.${s}`)])];
  return (
    <Layout v={v} title={v.t('incidents.title')}>
      <form method="get" action="/incidents" class="filters">
        <Select name="status" value={status} options={options} label={v.t('incidents.status')} />
        <button type="submit">{v.t('common.search')}</button>
      </form>
      {rows.length === 0 ? (
        <Empty v={v} />
      ) : (
        <table class="table" id="incidents">
          <thead>
            <tr>
              <th scope="col">{v.t('incidents.receipt')}</th>
              <th scope="col">{v.t('incidents.reportedAt')}</th>
              <th scope="col">{v.t('incidents.terminal')}</th>
              <th scope="col">{v.t('incidents.category')}</th>
              <th scope="col">{v.t('incidents.description')}</th>
              <th scope="col">{v.t('incidents.status')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr>
                <th scope="row">
                  <a href={`/incidents/${encodeURIComponent(r.receipt)}`} class="mono">
                    {r.receipt}
                  </a>
                </th>
                <td>
                  <Time v={v} at={r.reportedAt} />
                </td>
                <td>
                  <span class="untrusted">{r.hostname}</span> <SegmentTag v={v} segment={r.segment} />
                </td>
                <td>{category(v, r.category)}</td>
                <td class="untrusted clip">{r.description.length > 80 ? `${r.description.slice(0, 80)}…` : r.description}</td>
                <td>
                  <IncidentStatusBadge v={v} status={r.status} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

export function IncidentPage({ v, i }: { v: View; i: Incident }) {
  const ctx = i.context as { hostname?: unknown; osUser?: unknown; inventoryHash?: unknown; recentEvents?: unknown };
  const recent = Array.isArray(ctx.recentEvents) ? (ctx.recentEvents as Record<string, unknown>[]) : [];
  const text = (x: unknown) => (typeof x === 'string' || typeof x === 'number' ? String(x) : '');
  const moves = (['investigating', 'closed'] as const).filter((to) => canMove(i.status, to));
  return (
    <Layout v={v} title={v.t('incident.title', { id: i.receipt })} active="incidents">
      <p>
        <a href="/incidents">{v.t('common.back')}</a>
      </p>
      <section class="card">
        <Facts
          items={[
            [v.t('incidents.status'), <IncidentStatusBadge v={v} status={i.status} />],
            [v.t('incidents.category'), category(v, i.category)],
            [v.t('incidents.reportedAt'), <Time v={v} at={i.reportedAt} />],
            [v.t('incidents.occurredAt'), <Time v={v} at={i.occurredAt} />],
            [
              v.t('incidents.terminal'),
              <>
                <a href={`/terminals/${encodeURIComponent(i.agentId)}`} class="untrusted">
                  {i.hostname || i.agentId}
                </a>{' '}
                <SegmentTag v={v} segment={i.segment} />
              </>,
            ],
            [v.t('incidents.contact'), <span class="untrusted">{i.contact ?? ''}</span>],
            [v.t('incidents.updated'), i.updatedBy ? <><Time v={v} at={i.updatedAt} /> {i.updatedBy}</> : ''],
          ]}
        />
        <h2>{v.t('incidents.description')}</h2>
        <p class="untrusted prewrap" id="incident-description">
          {i.description}
        </p>
        {v.user!.role === 'admin' && moves.length > 0 ? (
          <div class="actions">
            {moves.map((to) => (
              <PostForm v={v} action={`/incidents/${encodeURIComponent(i.receipt)}/status`} class="inline">
                <input type="hidden" name="status" value={to} />
                <button type="submit" class={to === 'closed' ? '' : 'primary'}>
                  {v.t(`incidents.move.${to}`)}
                </button>
              </PostForm>
            ))}
          </div>
        ) : null}
      </section>
      <section class="card">
        <h2>{v.t('incidents.context')}</h2>
        <Facts
          items={[
            [v.t('terminals.hostname'), <span class="untrusted">{text(ctx.hostname)}</span>],
            [v.t('incidents.osUser'), <span class="untrusted">{text(ctx.osUser)}</span>],
            ['inventory', <span class="mono">{text(ctx.inventoryHash).slice(0, 16)}</span>],
          ]}
        />
        <h3>{v.t('incidents.recentEvents')}</h3>
        {recent.length === 0 ? (
          <Empty v={v} />
        ) : (
          <table class="table">
            <tbody>
              {recent.map((e) => (
                <tr>
                  <td class="num">{text(e.seq)}</td>
                  <td>
                    <Time v={v} at={text(e.at)} />
                  </td>
                  <td>{labelOr(v.t, `event.${text(e.type)}`, text(e.type))}</td>
                  <td class="untrusted">{text(e.summary)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </Layout>
  );
}
