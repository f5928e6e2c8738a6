import { INCIDENT_STATUSES, canMove } from '../../../incidents';
import type { listIncidents } from '../../../incidents';
import { labelOr } from '../../messages';
import type { incidentById } from '../../queries';
import { Facts, IncidentStatusBadge, incidentHref, PostForm, Select, Table, TerminalLink, Time } from '../components';
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
      <Table
        v={v}
        id="incidents"
        rows={rows}
        columns={[
          {
            head: v.t('incidents.receipt'),
            rowHeader: true,
            cell: (r) => (
              <a href={incidentHref(r)} class="mono">
                {r.receipt}
              </a>
            ),
          },
          { head: v.t('incidents.reportedAt'), cell: (r) => <Time v={v} at={r.reportedAt} /> },
          { head: v.t('incidents.terminal'), cell: (r) => <TerminalLink v={v} id={r.agentId} hostname={r.hostname} segment={r.segment} /> },
          { head: v.t('incidents.category'), cell: (r) => category(v, r.category) },
          {
            head: v.t('incidents.description'),
            class: 'untrusted clip',
            cell: (r) => (r.description.length > 80 ? `${r.description.slice(0, 80)}…` : r.description),
          },
          { head: v.t('incidents.status'), cell: (r) => <IncidentStatusBadge v={v} status={r.status} /> },
        ]}
      />
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
            [v.t('incidents.terminal'), <TerminalLink v={v} id={i.agentId} hostname={i.hostname} segment={i.segment} />],
            [v.t('incidents.contact'), <span class="untrusted">{i.contact ?? ''}</span>],
            [
              v.t('incidents.updated'),
              i.updatedBy ? (
                <>
                  <Time v={v} at={i.updatedAt} /> {i.updatedBy}
                </>
              ) : (
                ''
              ),
            ],
          ]}
        />
        <h2>{v.t('incidents.description')}</h2>
        <p class="untrusted prewrap" id="incident-description">
          {i.description}
        </p>
        {v.user!.role === 'admin' && moves.length > 0 ? (
          <div class="actions">
            {moves.map((to) => (
              <PostForm v={v} action={incidentHref(i, '/status')} class="inline">
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
            [v.t('incidents.inventoryHash'), <span class="mono">{text(ctx.inventoryHash).slice(0, 16)}</span>],
          ]}
        />
        <h3>{v.t('incidents.recentEvents')}</h3>
        <Table
          v={v}
          rows={recent}
          head={false}
          columns={[
            { head: 'seq', class: 'num', cell: (e) => text(e.seq) },
            { head: v.t('terminal.at'), cell: (e) => <Time v={v} at={text(e.at)} /> },
            { head: v.t('terminal.eventType'), cell: (e) => labelOr(v.t, `event.${text(e.type)}`, text(e.type)) },
            { head: v.t('terminal.what'), class: 'untrusted', cell: (e) => text(e.summary) },
          ]}
        />
      </section>
    </Layout>
  );
}
