import type { ComponentChildren } from 'preact';
import { EVENT_TYPES, type InventorySnapshot, type UsbDevice } from '../../../../shared';
import { labelOr } from '../../messages';
import { SEEN_FILTERS, TERMINAL_STATES, type ConsoleEvent, type TerminalFilter, type TerminalListRow, type terminalDetail } from '../../queries';
import {
  ChainBadge,
  EnforcementBadge,
  Facts,
  OnlineBadge,
  Pager,
  PostForm,
  SegmentOptions,
  SegmentTag,
  Select,
  StalledBadge,
  Table,
  TerminalLink,
  Time,
  deviceLabel,
  type Column,
} from '../components';
import { Layout } from '../layout';
import { mayOpen, type View } from '../view';

/** Interface classes of removable media: mass storage and still image (MTP/PTP). */
const REMOVABLE_CLASSES = ['08', '06'];

const str = (value: unknown) => (typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value));

/** One line saying what an event was about, from its untrusted payload. */
export function eventSummary(v: View, e: ConsoleEvent): string {
  const p = e.payload;
  const device = (d: unknown) => (d && typeof d === 'object' ? deviceLabel(d as Record<string, unknown>) : '');
  switch (e.type) {
    case 'device.attached':
    case 'device.detached':
      return device(p);
    case 'device.blocked':
    case 'device.allowed':
      return [device(p), p.mode ? labelOr(v.t, `mode.${str(p.mode)}`, str(p.mode)) : '', str(p.reason)].filter(Boolean).join(' — ');
    case 'login.success':
    case 'login.failure':
    case 'logout':
    case 'session.lock':
    case 'session.unlock':
      return [
        str(p.user),
        p.remoteHost ? `from ${str(p.remoteHost)}` : '',
        p.logonType !== undefined ? `type ${str(p.logonType)}` : '',
        str(p.reason),
        str(p.line),
      ]
        .filter(Boolean)
        .join(' ');
    case 'policy.applied':
      return [
        `v${str(p.version)}`,
        labelOr(v.t, `mode.${str(p.mode)}`, str(p.mode)),
        p.enforcement ? labelOr(v.t, `enforcement.${str(p.enforcement)}`, str(p.enforcement)) : '',
      ]
        .filter(Boolean)
        .join(' · ');
    case 'policy.drift_corrected':
      return `${str(p.control)}: ${str(p.found)} → ${str(p.expected)}`;
    case 'tamper.detected':
      return [str(p.what), str(p.detail)].filter(Boolean).join(': ');
    case 'exception.requested':
      return [device(p.device), str(p.reason), v.t('common.minutes', { n: str(p.minutes) }), str(p.requestCode)].filter(Boolean).join(' — ');
    case 'exception.granted':
      return [device(p.device), p.expiresAt ? `→ ${v.fmt.dateTime(str(p.expiresAt))}` : '', str(p.via)].filter(Boolean).join(' ');
    case 'exception.expired':
      return device(p.device);
    case 'incident.reported':
      return `${str(p.receipt)} ${labelOr(v.t, `incident.category.${str(p.category)}`, str(p.category))}`;
    case 'inventory.changed':
      return Array.isArray(p.changes) ? (p.changes as { summary?: unknown }[]).map((c) => str(c.summary)).join('; ') : '';
    case 'agent.started':
      return [str(p.version), str(p.platform)].filter(Boolean).join(' ');
    case 'agent.stopped':
      return str(p.reason);
    case 'agent.warning':
      return [str(p.component), str(p.code), str(p.message)].filter(Boolean).join(': ');
    case 'system.boot':
      return str(p.kernel);
    default:
      return JSON.stringify(p).slice(0, 300);
  }
}

export function EventTable({ v, events }: { v: View; events: ConsoleEvent[] }) {
  return (
    <Table
      v={v}
      class="events"
      rows={events}
      rowAttrs={(e) => ({ class: `ev ev-${e.type.replace(/\./g, '-')}` })}
      columns={[
        { head: 'seq', class: 'num', cell: (e) => e.seq },
        { head: v.t('terminal.at'), cell: (e) => <Time v={v} at={e.at} /> },
        { head: v.t('terminal.eventType'), cell: (e) => labelOr(v.t, `event.${e.type}`, e.type) },
        { head: v.t('terminal.what'), class: 'untrusted', cell: (e) => eventSummary(v, e) },
      ]}
    />
  );
}

export function TerminalsPage({ v, filter, rows, total }: { v: View; filter: TerminalFilter; rows: TerminalListRow[]; total: number }) {
  const stateOptions: [string, string][] = [
    ['', v.t('terminals.state.any')],
    ...TERMINAL_STATES.map((s): [string, string] => [s, s === 'degraded' || s === 'chain_broken' ? v.t(`terminals.state.${s}`) : v.t(`state.${s}`)]),
  ];
  const seenOptions: [string, string][] = [['', v.t('terminals.seen.any')], ...SEEN_FILTERS.map((s): [string, string] => [s, v.t(`terminals.seen.${s}`)])];
  // The filters as they are, for the sort link and the pager.
  const query = Object.fromEntries(
    Object.entries({ q: filter.q, segment: filter.segment, state: filter.state, seen: filter.seen }).filter((e): e is [string, string] => !!e[1]),
  );
  return (
    <Layout v={v} title={v.t('terminals.title')}>
      <form method="get" action="/terminals" class="filters" role="search">
        <label for="f-q" class="grow">
          <span>{v.t('common.search')}</span>
          <input id="f-q" type="search" name="q" value={filter.q ?? ''} placeholder={v.t('terminals.q')} maxLength={200} />
        </label>
        <Select name="segment" value={filter.segment} options={SegmentOptions(v)} label={v.t('terminals.segment')} />
        <Select name="state" value={filter.state} options={stateOptions} label={v.t('terminals.state')} />
        <Select name="seen" value={filter.seen} options={seenOptions} label={v.t('terminals.seen')} />
        <button type="submit">{v.t('common.search')}</button>
        <a href="/terminals" class="button-link">
          {v.t('common.clear')}
        </a>
      </form>
      <Table
        v={v}
        id="terminals"
        rows={rows}
        columns={[
          { head: v.t('terminals.hostname'), rowHeader: true, cell: (r) => <TerminalLink v={v} id={r.id} hostname={r.hostname} /> },
          { head: v.t('terminals.segment'), cell: (r) => <SegmentTag v={v} segment={r.segment} /> },
          {
            head: v.t('terminals.state'),
            cell: (r) => (
              <>
                <OnlineBadge v={v} online={r.online} lastSeen={r.lastSeen} /> <StalledBadge v={v} stalled={r.stalled} pending={r.pendingEvents} />
              </>
            ),
          },
          {
            head: <a href={`/terminals?${new URLSearchParams({ ...query, sort: 'last_seen' }).toString()}`}>{v.t('terminals.lastSeen')}</a>,
            cell: (r) => <Time v={v} at={r.lastSeen} />,
          },
          {
            head: v.t('terminals.policyVersion'),
            cell: (r) => (
              <>
                {r.policyVersion === null ? '—' : `v${r.policyVersion}`}
                {r.policyVersion !== null && r.policyVersion < r.currentVersion ? (
                  <span class="badge warn small">{v.t('terminals.outdated', { v: r.currentVersion })}</span>
                ) : null}
              </>
            ),
          },
          { head: v.t('terminals.enforcement'), cell: (r) => <EnforcementBadge v={v} state={r.enforcement} /> },
          { head: v.t('terminals.blocked7d'), class: 'num', cell: (r) => r.blocked7d },
          { head: v.t('terminals.chain'), cell: (r) => <ChainBadge v={v} broken={r.chainBroken} reason={r.chainBrokenReason} /> },
        ]}
      />
      <Pager
        v={v}
        base="/terminals"
        query={{ ...query, sort: filter.sort === 'last_seen' ? 'last_seen' : undefined }}
        page={filter.page}
        pageSize={filter.pageSize}
        total={total}
      />
    </Layout>
  );
}

type Detail = NonNullable<Awaited<ReturnType<typeof terminalDetail>>>;

function Inventory({ v, s, receivedAt }: { v: View; s: InventorySnapshot; receivedAt: string | null }) {
  return (
    <>
      <Facts
        items={[
          [v.t('terminal.inventory.collectedAt'), <Time v={v} at={s.collectedAt} />],
          [v.t('terminal.manufacturer'), s.system.manufacturer],
          [v.t('terminal.model'), s.system.model],
          [v.t('terminal.serial'), s.system.serial],
          [v.t('terminal.bios'), [s.bios.vendor, s.bios.version, s.bios.releaseDate].filter(Boolean).join(' ')],
          [v.t('terminal.os'), [s.os.distro || s.os.platform, s.os.release, s.os.arch].filter(Boolean).join(' ')],
          [v.t('terminal.cpu'), [s.cpu.brand, s.cpu.cores ? `(${s.cpu.cores} cores)` : ''].filter(Boolean).join(' ')],
          [v.t('terminal.memory'), v.fmt.bytes(s.memory.totalBytes)],
        ]}
      />
      {receivedAt ? (
        <p class="hint">
          <Time v={v} at={receivedAt} />
        </p>
      ) : null}
      <h3>{v.t('terminal.disks')}</h3>
      <Table
        v={v}
        rows={s.disks}
        head={false}
        columns={[
          { head: v.t('terminal.device'), class: 'untrusted', cell: (d) => [d.vendor, d.name].filter(Boolean).join(' ') || d.device },
          { head: '', cell: (d) => d.type },
          { head: '', cell: (d) => d.interfaceType },
          { head: '', class: 'num', cell: (d) => v.fmt.bytes(d.sizeBytes) },
          { head: v.t('terminal.serial'), class: 'untrusted', cell: (d) => d.serial },
        ]}
      />
      <h3>{v.t('terminal.network')}</h3>
      <Table
        v={v}
        rows={s.network}
        rowAttrs={(n): Record<string, string> => (n.internal ? { class: 'muted' } : {})}
        columns={[
          { head: v.t('terminal.iface'), class: 'untrusted', cell: (n) => n.iface },
          { head: v.t('terminal.mac'), class: 'mono', cell: (n) => n.mac },
          { head: v.t('terminal.ip'), class: 'mono', cell: (n) => [...n.ipv4, ...n.ipv6].join(', ') },
        ]}
      />
      {s.warnings.length > 0 ? (
        <>
          <h3>{v.t('terminal.warnings')}</h3>
          <ul>
            {s.warnings.map((w) => (
              <li class="untrusted">
                {w.section}: {w.message}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </>
  );
}

/** Whether a device's removable-media interfaces may bind now; null where the OS does not say. */
function usability(d: UsbDevice): { removable: boolean; usable: boolean | null } {
  const storage = d.interfaces.filter((i) => REMOVABLE_CLASSES.includes(i.interfaceClass));
  if (storage.length === 0) return { removable: REMOVABLE_CLASSES.includes(d.deviceClass), usable: d.authorized };
  return { removable: true, usable: storage.some((i) => i.authorized === null) ? null : storage.every((i) => i.authorized) };
}

function UsbNow({ v, t }: { v: View; t: Detail }) {
  const devices = (t.snapshot?.usb ?? []).filter((d) => !d.rootHub);
  const canAllow = mayOpen(v.user!.role, 'policies');
  const columns: Column<UsbDevice>[] = [
    { head: v.t('terminal.device'), class: 'untrusted', cell: (d) => [d.manufacturer, d.product].filter(Boolean).join(' ') || '—' },
    { head: v.t('terminal.vidpid'), class: 'mono', cell: (d) => `${d.vendorId}:${d.productId}` },
    { head: v.t('terminal.serial'), class: 'untrusted mono', cell: (d) => d.serial },
    {
      head: v.t('terminal.class'),
      class: 'mono',
      cell: (d) => [d.deviceClass, ...d.interfaces.map((i) => i.interfaceClass)].filter((c, i, all) => c !== '00' && all.indexOf(c) === i).join(', '),
    },
    { head: v.t('terminal.port'), class: 'untrusted mono', cell: (d) => d.port },
    {
      head: v.t('terminal.authorized'),
      cell: (d) => {
        const { usable } = usability(d);
        return usable === null ? '—' : <span class={`badge ${usable ? 'ok' : 'bad'}`}>{v.t(usable ? 'terminal.usbAllowed' : 'terminal.usbBlocked')}</span>;
      },
    },
  ];
  if (canAllow) {
    columns.push({
      head: '',
      cell: (d) =>
        usability(d).removable ? (
          <a
            href={`/policies/${encodeURIComponent(t.segment)}?${new URLSearchParams({ addVendor: d.vendorId, addProduct: d.productId, addSerial: d.serial }).toString()}`}
          >
            {v.t('terminal.allowThis')}
          </a>
        ) : null,
    });
  }
  return <Table v={v} id="usb-now" rows={devices} columns={columns} />;
}

export function TerminalPage({
  v,
  t,
  usb,
  events,
  eventType,
  before,
  nextBefore,
  verified,
}: {
  v: View;
  t: Detail;
  usb: ConsoleEvent[];
  events: ConsoleEvent[];
  eventType?: string;
  before?: number;
  nextBefore?: number;
  verified?: { count: number; broken: { seq: number; reason: string } | null };
}) {
  return (
    <Layout v={v} title={v.t('terminal.title', { host: t.hostname })} active="terminals">
      <p>
        <a href="/terminals">{v.t('common.back')}</a>
      </p>
      {verified ? (
        <div class={`flash ${verified.broken ? 'error' : 'ok'}`} role="status">
          <p>
            {verified.broken
              ? v.t('terminal.verified.bad', { seq: verified.broken.seq, reason: verified.broken.reason })
              : t.kept
                ? v.t('terminal.verified.okFrom', { from: t.kept.fromSeq, to: t.kept.fromSeq + verified.count - 1 })
                : v.t('terminal.verified.ok', { n: verified.count })}
          </p>
        </div>
      ) : null}
      <TerminalSummary v={v} t={t} />
      <section class="card">
        <h2>{v.t('terminal.inventory')}</h2>
        {t.snapshot ? <Inventory v={v} s={t.snapshot} receivedAt={t.snapshotReceivedAt} /> : <p class="empty">{v.t('terminal.inventory.none')}</p>}
      </section>
      <section class="card">
        <h2>{v.t('terminal.usbNow')}</h2>
        <UsbNow v={v} t={t} />
        <h2>{v.t('terminal.usbHistory')}</h2>
        <EventTable v={v} events={usb} />
      </section>
      <TerminalEvents v={v} t={t} events={events} eventType={eventType} before={before} nextBefore={nextBefore} />
    </Layout>
  );
}

/** The terminal's facts: identity, state, policy, outbox and log chain, with the verify button. */
function TerminalSummary({ v, t }: { v: View; t: Detail }) {
  return (
    <section class="card">
      <h2>{v.t('terminal.summary')}</h2>
      <Facts
        items={[
          [v.t('terminal.agentId'), <span class="mono">{t.id}</span>],
          [v.t('terminals.segment'), <SegmentTag v={v} segment={t.segment} />],
          [v.t('terminals.state'), <OnlineBadge v={v} online={t.online} lastSeen={t.lastSeen} />],
          [v.t('terminals.lastSeen'), <Time v={v} at={t.lastSeen} />],
          [v.t('terminal.enrolledAt'), <Time v={v} at={t.enrolledAt} />],
          [
            v.t('terminals.policyVersion'),
            t.policyVersion === null
              ? ''
              : `v${t.policyVersion}${t.policyVersion < t.currentVersion ? ` (${v.t('terminals.outdated', { v: t.currentVersion })})` : ''}`,
          ],
          [v.t('terminals.enforcement'), <EnforcementBadge v={v} state={t.enforcement} />],
          [v.t('terminals.blocked7d'), String(t.blocked7d)],
          [v.t('terminal.agentVersion'), t.agentVersion ?? ''],
          [v.t('terminal.lastUser'), t.lastUser ?? ''],
          [v.t('terminal.ackSeq'), String(t.ackSeq)],
          [
            v.t('terminal.pendingEvents'),
            <span id="outbox-status">
              {t.pendingEvents === null ? '—' : String(t.pendingEvents)}{' '}
              {t.stalled ? <span class="badge warn wrap">{v.t('outbox.stalledLong', { n: t.pendingEvents ?? 0 })}</span> : null}
            </span>,
          ],
          [
            v.t('terminals.chain'),
            <span id="chain-status">
              {t.chainBroken === null ? (
                <span class="badge ok">{v.t('chain.intact')}</span>
              ) : (
                <span class="badge bad">{v.t('chain.broken', { seq: t.chainBroken })}</span>
              )}
            </span>,
          ],
          ...(t.chainBrokenReason
            ? [
                [
                  v.t('terminal.chainReason'),
                  <span id="chain-reason" class="untrusted">
                    {t.chainBrokenReason}
                  </span>,
                ] as [string, ComponentChildren],
              ]
            : []),
          ...(t.kept
            ? [
                [
                  v.t('terminal.kept'),
                  <span id="kept-since">
                    {v.t('terminal.kept.from', { seq: t.kept.fromSeq })} <Time v={v} at={t.kept.before} />
                    {v.t('terminal.kept.pruned')} <Time v={v} at={t.kept.prunedAt} />
                  </span>,
                ] as [string, ComponentChildren],
              ]
            : []),
        ]}
      />
      <PostForm v={v} action={`/terminals/${encodeURIComponent(t.id)}/verify`}>
        <button type="submit">{v.t('terminal.verify')}</button>
      </PostForm>
    </section>
  );
}

/** The terminal's events, filtered by type, a page at a time. */
function TerminalEvents({
  v,
  t,
  events,
  eventType,
  before,
  nextBefore,
}: {
  v: View;
  t: Detail;
  events: ConsoleEvent[];
  eventType?: string;
  before?: number;
  nextBefore?: number;
}) {
  const typeOptions: [string, string][] = [['', v.t('terminal.allTypes')], ...EVENT_TYPES.map((e): [string, string] => [e, labelOr(v.t, `event.${e}`, e)])];
  return (
    <section class="card" id="events">
      <h2>{v.t('terminal.events')}</h2>
      <form method="get" action={`/terminals/${encodeURIComponent(t.id)}#events`} class="filters">
        <Select name="type" value={eventType} options={typeOptions} label={v.t('terminal.eventType')} />
        <button type="submit">{v.t('common.search')}</button>
      </form>
      <EventTable v={v} events={events} />
      <nav class="pager">
        {before !== undefined ? (
          <a href={`/terminals/${encodeURIComponent(t.id)}?${new URLSearchParams(eventType ? { type: eventType } : {}).toString()}#events`}>
            {v.t('common.prev')}
          </a>
        ) : null}
        {nextBefore !== undefined ? (
          <a
            href={`/terminals/${encodeURIComponent(t.id)}?${new URLSearchParams({ ...(eventType ? { type: eventType } : {}), before: String(nextBefore) }).toString()}#events`}
          >
            {v.t('common.next')}
          </a>
        ) : null}
      </nav>
    </section>
  );
}
