import type { ComponentChildren } from 'preact';
import { SEGMENTS, type Segment } from '../../../shared';
import type { MessageKey } from '../messages';
import { labelOr } from '../messages';
import type { View } from './view';

/** A stored UTC time shown in the reader's zone, machine-readable in `datetime`. */
export function Time({ v, at }: { v: View; at: string | null | undefined }) {
  if (!at) return <span class="muted">—</span>;
  return <time datetime={at}>{v.fmt.dateTime(at)}</time>;
}

/** The hidden synchronizer token every POST form carries. */
export function Csrf({ v }: { v: View }) {
  return <input type="hidden" name="_csrf" value={v.csrf} />;
}

/** A POST form with its CSRF token. */
export function PostForm(props: { v: View; action: string; class?: string; confirm?: string; children: ComponentChildren }) {
  return (
    <form method="post" action={props.action} class={props.class} data-confirm={props.confirm}>
      <Csrf v={props.v} />
      {props.children}
    </form>
  );
}

export function segmentName(v: View, segment: string): string {
  return (SEGMENTS as readonly string[]).includes(segment) ? v.t(`segment.${segment as Segment}`) : segment;
}

export function SegmentTag({ v, segment }: { v: View; segment: string }) {
  return <span class={`tag seg-${(SEGMENTS as readonly string[]).includes(segment) ? segment : 'other'}`}>{segmentName(v, segment)}</span>;
}

const ENFORCEMENT_TONE: Record<string, string> = { active: 'ok', degraded: 'bad', audit: 'info', off: 'bad', unknown: 'warn', none: 'muted' };

export function EnforcementBadge({ v, state }: { v: View; state: string | null }) {
  const key = state ?? 'none';
  return <span class={`badge ${ENFORCEMENT_TONE[key] ?? 'warn'}`}>{labelOr(v.t, `enforcement.${key}`, key)}</span>;
}

export function OnlineBadge({ v, online, lastSeen }: { v: View; online: boolean; lastSeen: string | null }) {
  if (!lastSeen) return <span class="badge muted">{v.t('state.never')}</span>;
  return <span class={`badge ${online ? 'ok' : 'warn'}`}>{v.t(online ? 'state.online' : 'state.offline')}</span>;
}

export function ChainBadge({ v, broken, reason }: { v: View; broken: number | null; reason?: string | null }) {
  if (broken === null) return <span class="badge ok">{v.t('chain.intactShort')}</span>;
  return (
    <>
      <span class="badge bad" title={v.t('chain.broken', { seq: broken })}>
        {v.t('chain.brokenShort')} (seq {broken})
      </span>
      {reason ? <span class="hint untrusted chain-reason">{v.t('chain.reason', { reason })}</span> : null}
    </>
  );
}

/** "Sending stalled" when events are pending and the terminal's outbox has not moved (docs/design.md#sync-trust). */
export function StalledBadge({ v, stalled, pending }: { v: View; stalled: boolean; pending: number | null }) {
  return stalled ? (
    <span class="badge warn stalled" title={v.t('outbox.stalledLong', { n: pending ?? 0 })}>
      {v.t('outbox.stalled')}
    </span>
  ) : null;
}

const INCIDENT_TONE: Record<string, string> = { new: 'bad', investigating: 'warn', closed: 'muted' };

export function IncidentStatusBadge({ v, status }: { v: View; status: string }) {
  return <span class={`badge ${INCIDENT_TONE[status] ?? 'muted'}`}>{labelOr(v.t, `incident.status.${status}`, status)}</span>;
}

const EXCEPTION_TONE: Record<string, string> = { pending: 'warn', approved: 'info', granted: 'ok', denied: 'muted' };

export function ExceptionStatusBadge({ v, status }: { v: View; status: string }) {
  return <span class={`badge ${EXCEPTION_TONE[status] ?? 'muted'}`}>{labelOr(v.t, `exception.status.${status}`, status)}</span>;
}

/** A list of term and value pairs; empty values show a dash. */
export function Facts({ items }: { items: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {items.map(([term, value]) => (
        <div>
          <dt>{term}</dt>
          <dd>{value === '' || value === null || value === undefined ? <span class="muted">—</span> : value}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Empty({ v }: { v: View }) {
  return <p class="empty">{v.t('common.empty')}</p>;
}

/** One column of a `Table`: its header and how a row fills its cell. */
export interface Column<T> {
  head: ComponentChildren;
  cell: (row: T) => ComponentChildren;
  class?: string;
  /** The cell names its row (`<th scope="row">`), for screen readers. */
  rowHeader?: boolean;
}

/** A table of rows, or the "nothing to show" line when there are none. */
export function Table<T>({
  v,
  id,
  rows,
  columns,
  rowAttrs,
  head = true,
  class: extra,
}: {
  v: View;
  id?: string;
  rows: T[];
  columns: Column<T>[];
  rowAttrs?: (row: T) => Record<string, string>;
  head?: boolean;
  class?: string;
}) {
  if (rows.length === 0) return <Empty v={v} />;
  return (
    <table class={`table${extra ? ` ${extra}` : ''}`} id={id}>
      {head ? (
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" class={c.class}>
                {c.head}
              </th>
            ))}
          </tr>
        </thead>
      ) : null}
      <tbody>
        {rows.map((row) => (
          <tr {...rowAttrs?.(row)}>
            {columns.map((c) =>
              c.rowHeader ? (
                <th scope="row" class={c.class}>
                  {c.cell(row)}
                </th>
              ) : (
                <td class={c.class}>{c.cell(row)}</td>
              ),
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The page of an incident: its id is `<agentId>:<receipt>`, since receipts are unique per terminal
 * only (docs/design.md#sync-trust); the colon stays readable in the address.
 */
export function incidentHref(i: { agentId: string; receipt: string }, suffix = ''): string {
  return `/incidents/${encodeURIComponent(i.agentId)}:${encodeURIComponent(i.receipt)}${suffix}`;
}

/** A terminal's name linking to its page, with its segment. */
export function TerminalLink({ v, id, hostname, segment }: { v: View; id: string; hostname: string; segment?: string }) {
  return (
    <>
      <a href={`/terminals/${encodeURIComponent(id)}`} class="untrusted">
        {hostname || id}
      </a>
      {segment ? (
        <>
          {' '}
          <SegmentTag v={v} segment={segment} />
        </>
      ) : null}
    </>
  );
}

/** Previous/next links that keep the other query parameters. */
export function Pager({
  v,
  base,
  query,
  page,
  pageSize,
  total,
}: {
  v: View;
  base: string;
  query: Record<string, string | undefined>;
  page: number;
  pageSize: number;
  total: number;
}) {
  if (total === 0) return null;
  const href = (p: number) => {
    const params = new URLSearchParams();
    for (const [k, val] of Object.entries(query)) if (val) params.set(k, val);
    params.set('page', String(p));
    return `${base}?${params.toString()}`;
  };
  const from = (page - 1) * pageSize + 1;
  const to = Math.min(page * pageSize, total);
  return (
    <nav class="pager" aria-label="pagination">
      <span>{v.t('common.page', { from: v.fmt.number(from), to: v.fmt.number(to), total: v.fmt.number(total) })}</span>
      {page > 1 ? <a href={href(page - 1)}>{v.t('common.prev')}</a> : null}
      {to < total ? <a href={href(page + 1)}>{v.t('common.next')}</a> : null}
    </nav>
  );
}

/** A <select> of options with one chosen. */
export function Select({
  name,
  value,
  options,
  label,
  id,
}: {
  name: string;
  value: string | undefined;
  options: [string, string][];
  label: string;
  id?: string;
}) {
  const fieldId = id ?? `f-${name}`;
  return (
    <label for={fieldId}>
      <span>{label}</span>
      <select id={fieldId} name={name}>
        {options.map(([val, text]) => (
          <option value={val} selected={val === (value ?? '')}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

export function SegmentOptions(v: View, allKey: MessageKey = 'segment.all'): [string, string][] {
  return [['', v.t(allKey)], ...SEGMENTS.map((s): [string, string] => [s, v.t(`segment.${s}`)])];
}

/** A device as people name it: maker and product, with its ids. */
export function deviceLabel(d: Record<string, unknown>): string {
  const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : '');
  const name = [str('manufacturer'), str('product')].filter(Boolean).join(' ');
  const ids = str('vendorId') && str('productId') ? `${str('vendorId')}:${str('productId')}` : '';
  const serial = str('serial') ? `S/N ${str('serial')}` : '';
  const idText = [ids, serial].filter(Boolean).join(', ');
  return (name ? [name, idText && `(${idText})`] : [idText]).filter(Boolean).join(' ') || str('port') || '—';
}

/**
 * A stacked bar chart of counts per day and segment, drawn as SVG on the server (no script), with
 * the same numbers in a table for screen readers.
 */
export function BlockedChart({ v, days, series }: { v: View; days: string[]; series: Record<Segment, number[]> }) {
  const totals = days.map((_, i) => SEGMENTS.reduce((sum, s) => sum + (series[s][i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const width = 560;
  const height = 200;
  const left = 36;
  const bottom = 24;
  const plotH = height - bottom - 10;
  const slot = (width - left) / days.length;
  const barW = Math.min(44, slot * 0.6);
  const ticks = [0, Math.ceil(max / 2), max];
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={v.t('dashboard.chartLabel')} class="bars">
        {ticks.map((tick) => {
          const y = 10 + plotH - (tick / max) * plotH;
          return (
            <g>
              <line x1={left} x2={width} y1={y} y2={y} class="grid" />
              <text x={left - 6} y={y + 4} class="axis" text-anchor="end">
                {tick}
              </text>
            </g>
          );
        })}
        {days.map((day, i) => {
          let y = 10 + plotH;
          const x = left + i * slot + (slot - barW) / 2;
          return (
            <g>
              {SEGMENTS.map((s) => {
                const n = series[s][i] ?? 0;
                if (n === 0) return null;
                const h = (n / max) * plotH;
                y -= h;
                return (
                  <rect x={x} y={y} width={barW} height={h} class={`bar seg-${s}`}>
                    <title>{`${v.fmt.dayLabel(day)} ${v.t(`segment.${s}`)}: ${n}`}</title>
                  </rect>
                );
              })}
              <text x={x + barW / 2} y={height - 6} class="axis" text-anchor="middle">
                {v.fmt.dayLabel(day)}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul class="legend">
          {SEGMENTS.map((s) => (
            <li>
              <span class={`swatch seg-${s}`} aria-hidden="true" />
              {v.t(`segment.${s}`)}
            </li>
          ))}
        </ul>
        <table class="sr-only" id="blocked-by-day">
          <thead>
            <tr>
              <th scope="col">{v.t('terminal.at')}</th>
              {SEGMENTS.map((s) => (
                <th scope="col">{v.t(`segment.${s}`)}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {days.map((day, i) => (
              <tr>
                <th scope="row">{day}</th>
                {SEGMENTS.map((s) => (
                  <td>{series[s][i] ?? 0}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </figcaption>
    </figure>
  );
}
