import { EVENT_TYPES, type InventorySnapshot } from '../../../../shared';
import { labelOr } from '../../messages';
import { SEEN_FILTERS, TERMINAL_STATES, type ConsoleEvent, type TerminalFilter, type TerminalListRow, type terminalDetail } from '../../queries';
import { ChainBadge, Empty, EnforcementBadge, Facts, OnlineBadge, Pager, PostForm, SegmentOptions, SegmentTag, Select, Time, deviceLabel } from '../components';
import { Layout } from '../layout';
import { mayOpen, type View } from '../view';

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
      return [str(p.user), p.remoteHost ? `from ${str(p.remoteHost)}` : '', p.logonType !== undefined ? `type ${str(p.logonType)}` : '', str(p.reason), str(p.line)].filter(Boolean).join(' ');
    case 'policy.applied':
      return [`v${str(p.version)}`, labelOr(v.t, `mode.${str(p.mode)}`, str(p.mode)), p.enforcement ? labelOr(v.t, `enforcement.${str(p.enforcement)}`, str(p.enforcement)) : ''].filter(Boolean).join(' · ');
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
  if (events.length === 0) return <Empty v={v} />;
  return (
    <table class="table events">
      <thead>
        <tr>
          <th scope="col">seq</th>
          <th scope="col">{v.t('terminal.at')}</th>
          <th scope="col">{v.t('terminal.eventType')}</th>
          <th scope="col">{v.t('terminal.what')}</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr class={`ev ev-${e.type.replace(/\./g, '-')}`}>
            <td class="num">{e.seq}</td>
            <td>
              <Time v={v} at={e.at} />
            </td>
            <td>{labelOr(v.t, `event.${e.type}`, e.type)}</td>
            <td class="untrusted">{eventSummary(v, e)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TerminalsPage({ v, filter, rows, total }: { v: View; filter: TerminalFilter; rows: TerminalListRow[]; total: number }) {
  const stateOptions: [string, string][] = [
    ['', v.t('terminals.state.any')],
    ...TERMINAL_STATES.map((s): [string, string] => [s, s === 'degraded' || s === 'chain_broken' ? v.t(`terminals.state.${s}`) : v.t(`state.${s}`)]),
  ];
  const seenOptions: [string, string][] = [['', v.t('terminals.seen.any')], ...SEEN_FILTERS.map((s): [string, string] => [s, v.t(`terminals.seen.${s}`)])];
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
      {rows.length === 0 ? (
        <Empty v={v} />
      ) : (
        <table class="table" id="terminals">
          <thead>
            <tr>
              <th scope="col">{v.t('terminals.hostname')}</th>
              <th scope="col">{v.t('terminals.segment')}</th>
              <th scope="col">{v.t('terminals.state')}</th>
              <th scope="col">
                <a href={`/terminals?${new URLSearchParams({ ...(filter.q ? { q: filter.q } : {}), ...(filter.segment ? { segment: filter.segment } : {}), ...(filter.state ? { state: filter.state } : {}), ...(filter.seen ? { seen: filter.seen } : {}), sort: 'last_seen' }).toString()}`}>{v.t('terminals.lastSeen')}</a>
              </th>
              <th scope="col">{v.t('terminals.policyVersion')}</th>
              <th scope="col">{v.t('terminals.enforcement')}</th>
              <th scope="col" class="num">
                {v.t('terminals.blocked7d')}
              </th>
              <th scope="col">{v.t('terminals.chain')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr>
                <th scope="row">
                  <a href={`/terminals/${encodeURIComponent(r.id)}`} class="untrusted">
                    {r.hostname}
                  </a>
                </th>
                <td>
                  <SegmentTag v={v} segment={r.segment} />
                </td>
                <td>
                  <OnlineBadge v={v} online={r.online} lastSeen={r.lastSeen} />
                </td>
                <td>
                  <Time v={v} at={r.lastSeen} />
                </td>
                <td>
                  {r.policyVersion === null ? '—' : `v${r.policyVersion}`}
                  {r.policyVersion !== null && r.policyVersion < r.currentVersion ? <span class="badge warn small">{v.t('terminals.outdated', { v: r.currentVersion })}</span> : null}
                </td>
                <td>
                  <EnforcementBadge v={v} state={r.enforcement} />
                </td>
                <td class="num">{r.blocked7d}</td>
                <td>
                  <ChainBadge v={v} broken={r.chainBroken} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager v={v} base="/terminals" query={{ q: filter.q, segment: filter.segment, state: filter.state, seen: filter.seen, sort: filter.sort === 'last_seen' ? 'last_seen' : undefined }} page={filter.page} pageSize={filter.pageSize} total={total} />
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
      {s.disks.length === 0 ? (
        <Empty v={v} />
      ) : (
        <table class="table">
          <tbody>
            {s.disks.map((d) => (
              <tr>
                <td class="untrusted">{[d.vendor, d.name].filter(Boolean).join(' ') || d.device}</td>
                <td>{d.type}</td>
                <td>{d.interfaceType}</td>
                <td class="num">{v.fmt.bytes(d.sizeBytes)}</td>
                <td class="untrusted">{d.serial}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>{v.t('terminal.network')}</h3>
      {s.network.length === 0 ? (
        <Empty v={v} />
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th scope="col">{v.t('terminal.iface')}</th>
              <th scope="col">{v.t('terminal.mac')}</th>
              <th scope="col">{v.t('terminal.ip')}</th>
            </tr>
          </thead>
          <tbody>
            {s.network.map((n) => (
              <tr class={n.internal ? 'muted' : ''}>
                <td class="untrusted">{n.iface}</td>
                <td class="mono">{n.mac}</td>
                <td class="mono">{[...n.ipv4, ...n.ipv6].join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
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

function UsbNow({ v, t }: { v: View; t: Detail }) {
  const devices = (t.snapshot?.usb ?? []).filter((d) => !d.rootHub);
  if (devices.length === 0) return <Empty v={v} />;
  const canAllow = mayOpen(v.user!.role, 'policies');
  return (
    <table class="table" id="usb-now">
      <thead>
        <tr>
          <th scope="col">{v.t('terminal.device')}</th>
          <th scope="col">{v.t('terminal.vidpid')}</th>
          <th scope="col">{v.t('terminal.serial')}</th>
          <th scope="col">{v.t('terminal.class')}</th>
          <th scope="col">{v.t('terminal.port')}</th>
          <th scope="col">{v.t('terminal.authorized')}</th>
          {canAllow ? <th scope="col" /> : null}
        </tr>
      </thead>
      <tbody>
        {devices.map((d) => {
          const classes = [d.deviceClass, ...d.interfaces.map((i) => i.interfaceClass)].filter((c, i, all) => c !== '00' && all.indexOf(c) === i);
          return (
            <tr>
              <td class="untrusted">{[d.manufacturer, d.product].filter(Boolean).join(' ') || '—'}</td>
              <td class="mono">
                {d.vendorId}:{d.productId}
              </td>
              <td class="untrusted mono">{d.serial}</td>
              <td class="mono">{classes.join(', ')}</td>
              <td class="untrusted mono">{d.port}</td>
              <td>{d.authorized === null ? '—' : d.authorized ? v.t('terminal.usbAllowed') : v.t('terminal.usbBlocked')}</td>
              {canAllow ? (
                <td>
                  <a href={`/policies/${encodeURIComponent(t.segment)}?${new URLSearchParams({ addVendor: d.vendorId, addProduct: d.productId, addSerial: d.serial }).toString()}`}>{v.t('terminal.allowThis')}</a>
                </td>
              ) : null}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function TerminalPage({ v, t, usb, events, eventType, before, nextBefore, verified }: { v: View; t: Detail; usb: ConsoleEvent[]; events: ConsoleEvent[]; eventType?: string; before?: number; nextBefore?: number; verified?: { count: number; broken: { seq: number; reason: string } | null } }) {
  const typeOptions: [string, string][] = [['', v.t('terminal.allTypes')], ...EVENT_TYPES.map((e): [string, string] => [e, labelOr(v.t, `event.${e}`, e)])];
  return (
    <Layout v={v} title={v.t('terminal.title', { host: t.hostname })} active="terminals">
      <p>
        <a href="/terminals">{v.t('common.back')}</a>
      </p>
      {verified ? (
        <div class={`flash ${verified.broken ? 'error' : 'ok'}`} role="status">
          <p>{verified.broken ? v.t('terminal.verified.bad', { seq: verified.broken.seq, reason: verified.broken.reason }) : v.t('terminal.verified.ok', { n: verified.count })}</p>
        </div>
      ) : null}
      <section class="card">
        <h2>{v.t('terminal.summary')}</h2>
        <Facts
          items={[
            [v.t('terminal.agentId'), <span class="mono">{t.id}</span>],
            [v.t('terminals.segment'), <SegmentTag v={v} segment={t.segment} />],
            [v.t('terminals.state'), <OnlineBadge v={v} online={t.online} lastSeen={t.lastSeen} />],
            [v.t('terminals.lastSeen'), <Time v={v} at={t.lastSeen} />],
            [v.t('terminal.enrolledAt'), <Time v={v} at={t.enrolledAt} />],
            [v.t('terminals.policyVersion'), t.policyVersion === null ? '' : `v${t.policyVersion}${t.policyVersion < t.currentVersion ? ` (${v.t('terminals.outdated', { v: t.currentVersion })})` : ''}`],
            [v.t('terminals.enforcement'), <EnforcementBadge v={v} state={t.enforcement} />],
            [v.t('terminals.blocked7d'), String(t.blocked7d)],
            [v.t('terminal.agentVersion'), t.agentVersion ?? ''],
            [v.t('terminal.lastUser'), t.lastUser ?? ''],
            [v.t('terminal.ackSeq'), String(t.ackSeq)],
            [v.t('terminals.chain'), <span id="chain-status">{t.chainBroken === null ? <span class="badge ok">{v.t('chain.intact')}</span> : <span class="badge bad">{v.t('chain.broken', { seq: t.chainBroken })}</span>}</span>],
          ]}
        />
        <PostForm v={v} action={`/terminals/${encodeURIComponent(t.id)}/verify`}>
          <button type="submit">{v.t('terminal.verify')}</button>
        </PostForm>
      </section>
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
      <section class="card" id="events">
        <h2>{v.t('terminal.events')}</h2>
        <form method="get" action={`/terminals/${encodeURIComponent(t.id)}#events`} class="filters">
          <Select name="type" value={eventType} options={typeOptions} label={v.t('terminal.eventType')} />
          <button type="submit">{v.t('common.search')}</button>
        </form>
        <EventTable v={v} events={events} />
        <nav class="pager">
          {before !== undefined ? <a href={`/terminals/${encodeURIComponent(t.id)}?${new URLSearchParams(eventType ? { type: eventType } : {}).toString()}#events`}>{v.t('common.prev')}</a> : null}
          {nextBefore !== undefined ? <a href={`/terminals/${encodeURIComponent(t.id)}?${new URLSearchParams({ ...(eventType ? { type: eventType } : {}), before: String(nextBefore) }).toString()}#events`}>{v.t('common.next')}</a> : null}
        </nav>
      </section>
    </Layout>
  );
}
