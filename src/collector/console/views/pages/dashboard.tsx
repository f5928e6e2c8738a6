import { SEGMENTS, type Segment } from '../../../../shared';
import type { DashboardData } from '../../queries';
import { BlockedChart, EnforcementBadge, IncidentStatusBadge, incidentHref, SegmentTag, Table, TerminalLink, Time } from '../components';
import { labelOr } from '../../messages';
import { Layout } from '../layout';
import { mayOpen, type View } from '../view';

const DAY_MS = 86_400_000;

/** Folds UTC hour buckets into the last seven days of the reader's time zone. */
export function blockedByDay(v: View, hours: DashboardData['blockedHours'], at: Date): { days: string[]; series: Record<Segment, number[]> } {
  const days = Array.from({ length: 7 }, (_, i) => v.fmt.day(new Date(at.getTime() - (6 - i) * DAY_MS)));
  const series = Object.fromEntries(SEGMENTS.map((s) => [s, days.map(() => 0)])) as Record<Segment, number[]>;
  for (const h of hours) {
    const day = v.fmt.day(new Date(`${h.hour}:00:00Z`));
    const i = days.indexOf(day);
    if (i >= 0 && h.segment in series) series[h.segment as Segment][i]! += h.n;
  }
  return { days, series };
}

function Stat({ label, value, href, tone }: { label: string; value: number; href?: string; tone?: string }) {
  const body = (
    <>
      <span class="stat-value">{value}</span>
      <span class="stat-label">{label}</span>
    </>
  );
  return <li class={`stat ${tone ?? ''}`}>{href ? <a href={href}>{body}</a> : body}</li>;
}

/** Terminals per segment, online and offline, and the enforcement states. */
function SegmentCard({ v, d }: { v: View; d: DashboardData }) {
  return (
    <section class="card">
      <h2>{v.t('dashboard.bySegment')}</h2>
      <table class="table">
        <thead>
          <tr>
            <th scope="col">{v.t('terminals.segment')}</th>
            <th scope="col" class="num">
              {v.t('dashboard.terminals')}
            </th>
            <th scope="col" class="num">
              {v.t('dashboard.online')}
            </th>
            <th scope="col" class="num">
              {v.t('dashboard.offline')}
            </th>
          </tr>
        </thead>
        <tbody>
          {SEGMENTS.map((s) => (
            <tr>
              <th scope="row">
                <a href={`/terminals?segment=${s}`}>
                  <SegmentTag v={v} segment={s} />
                </a>
              </th>
              <td class="num">{d.perSegment[s].total}</td>
              <td class="num">{d.perSegment[s].online}</td>
              <td class="num">{d.perSegment[s].total - d.perSegment[s].online}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="hint">{v.t('dashboard.onlineHelp')}</p>
      <h3>{v.t('dashboard.enforcement')}</h3>
      <ul class="chips">
        {Object.entries(d.enforcement)
          .sort((a, b) => b[1] - a[1])
          .map(([state, n]) => (
            <li>
              <EnforcementBadge v={v} state={state === 'none' ? null : state} /> {n}
            </li>
          ))}
      </ul>
    </section>
  );
}

export function DashboardPage({ v, d }: { v: View; d: DashboardData }) {
  const { days, series } = blockedByDay(v, d.blockedHours, v.now);
  const blockedTotal = SEGMENTS.reduce((sum, s) => sum + series[s].reduce((a, b) => a + b, 0), 0);
  const online = SEGMENTS.reduce((sum, s) => sum + d.perSegment[s].online, 0);
  const role = v.user!.role;
  return (
    <Layout v={v} title={v.t('dashboard.title')}>
      <ul class="stats">
        <Stat label={v.t('dashboard.terminals')} value={d.total} href="/terminals" />
        <Stat label={v.t('dashboard.online')} value={online} href="/terminals?state=online" tone="ok" />
        <Stat label={v.t('dashboard.offline')} value={d.total - online} href="/terminals?state=offline" tone={d.total - online > 0 ? 'warn' : ''} />
        <Stat label={v.t('dashboard.degraded')} value={d.degraded} href="/terminals?state=degraded" tone={d.degraded > 0 ? 'bad' : ''} />
        <Stat label={v.t('dashboard.openIncidents')} value={d.openIncidents} href="/incidents" tone={d.openIncidents > 0 ? 'bad' : ''} />
        <Stat
          label={v.t('dashboard.pendingExceptions')}
          value={d.pendingExceptions}
          href={mayOpen(role, 'exceptions') ? '/exceptions' : undefined}
          tone={d.pendingExceptions > 0 ? 'warn' : ''}
        />
        <Stat label={v.t('dashboard.brokenChains')} value={d.broken.length} href="/terminals?state=chain_broken" tone={d.broken.length > 0 ? 'bad' : ''} />
      </ul>

      <div class="grid2">
        <SegmentCard v={v} d={d} />
        <section class="card">
          <h2>
            {v.t('dashboard.blocked7d')} <small>{v.t('dashboard.blockedTotal', { n: blockedTotal })}</small>
          </h2>
          <BlockedChart v={v} days={days} series={series} />
        </section>
      </div>

      <div class="grid2">
        <section class="card">
          <h2>{v.t('dashboard.recentIncidents')}</h2>
          <Table
            v={v}
            rows={d.recentIncidents}
            head={false}
            columns={[
              {
                head: v.t('incidents.receipt'),
                cell: (i) => (
                  <a href={incidentHref(i)} class="mono">
                    {i.receipt}
                  </a>
                ),
              },
              { head: v.t('incidents.terminal'), class: 'untrusted', cell: (i) => i.hostname },
              { head: v.t('incidents.category'), cell: (i) => labelOr(v.t, `incident.category.${i.category}`, i.category) },
              { head: v.t('incidents.status'), cell: (i) => <IncidentStatusBadge v={v} status={i.status} /> },
              { head: v.t('incidents.reportedAt'), cell: (i) => <Time v={v} at={i.reportedAt} /> },
            ]}
          />
        </section>
        <section class="card">
          <h2>{v.t('dashboard.brokenChains')}</h2>
          {d.broken.length === 0 ? (
            <p class="empty">{v.t('dashboard.noBroken')}</p>
          ) : (
            <Table
              v={v}
              rows={d.broken}
              head={false}
              columns={[
                { head: v.t('terminals.hostname'), cell: (b) => <TerminalLink v={v} id={b.id} hostname={b.hostname} segment={b.segment} /> },
                { head: v.t('terminals.chain'), cell: (b) => <span class="badge bad">{v.t('chain.broken', { seq: b.seq })}</span> },
              ]}
            />
          )}
        </section>
      </div>
    </Layout>
  );
}
