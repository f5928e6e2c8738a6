import { labelOr } from '../../messages';
import type { AuditFilter, AuditRow } from '../../queries';
import { Pager, Select, Table, Time } from '../components';
import { Layout } from '../layout';
import type { View } from '../view';

/** An audit entry's detail as short `key: value` text (JSON for nested values). */
export function detailText(detail: unknown): string {
  if (!detail || typeof detail !== 'object') return '';
  return Object.entries(detail as Record<string, unknown>)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(', ');
}

export function AuditPage({
  v,
  rows,
  total,
  actions,
  filter,
  query,
}: {
  v: View;
  rows: AuditRow[];
  total: number;
  actions: string[];
  filter: AuditFilter;
  query: Record<string, string | undefined>;
}) {
  const csv = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => !!e[1] && e[0] !== 'page')).toString();
  return (
    <Layout v={v} title={v.t('auditlog.title')}>
      <form method="get" action="/audit" class="filters">
        <label for="f-actor">
          <span>{v.t('auditlog.actor')}</span>
          <input id="f-actor" name="actor" value={filter.actor ?? ''} maxLength={100} />
        </label>
        <Select
          name="action"
          value={filter.action}
          label={v.t('auditlog.action')}
          options={[['', v.t('auditlog.allActions')], ...actions.map((a): [string, string] => [a, labelOr(v.t, `audit.${a}`, a)])]}
        />
        <label for="f-from">
          <span>{v.t('auditlog.from')}</span>
          <input id="f-from" name="from" type="date" value={query.from ?? ''} />
        </label>
        <label for="f-to">
          <span>{v.t('auditlog.to')}</span>
          <input id="f-to" name="to" type="date" value={query.to ?? ''} />
        </label>
        <button type="submit">{v.t('common.search')}</button>
        <a class="button-link" href={`/audit/export.csv${csv ? `?${csv}` : ''}`}>
          {v.t('auditlog.csv')}
        </a>
      </form>
      <Table
        v={v}
        id="audit"
        rows={rows}
        rowAttrs={(r) => ({ 'data-action': r.action })}
        columns={[
          { head: v.t('auditlog.at'), cell: (r) => <Time v={v} at={r.at} /> },
          { head: v.t('auditlog.actor'), class: 'untrusted', cell: (r) => r.actor },
          { head: v.t('auditlog.role'), cell: (r) => (r.role ? labelOr(v.t, `role.${r.role}`, r.role) : '') },
          { head: v.t('auditlog.action'), cell: (r) => labelOr(v.t, `audit.${r.action}`, r.action) },
          { head: v.t('auditlog.target'), class: 'untrusted mono', cell: (r) => r.target },
          { head: v.t('auditlog.detail'), class: 'untrusted detail', cell: (r) => detailText(r.detail) },
          { head: v.t('auditlog.address'), class: 'mono', cell: (r) => r.address },
        ]}
      />
      <Pager v={v} base="/audit" query={query} page={filter.page} pageSize={filter.pageSize} total={total} />
    </Layout>
  );
}
