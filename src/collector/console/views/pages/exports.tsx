import type { AuditRow } from '../../queries';
import { SegmentOptions, Select, Table, Time, segmentName } from '../components';
import { Layout } from '../layout';
import type { View } from '../view';

/** What the audit log keeps of an export. */
interface ExportDetail {
  format?: string;
  rows?: number;
}

export function ExportsPage({ v, recent }: { v: View; recent: AuditRow[] }) {
  return (
    <Layout v={v} title={v.t('exports.title')}>
      <section class="card">
        <p>{v.t('exports.help')}</p>
        <form method="get" action="/exports/download" class="filters" id="export-form">
          <Select
            name="format"
            value="xlsx"
            label={v.t('exports.format')}
            options={[
              ['xlsx', v.t('exports.format.xlsx')],
              ['csv', v.t('exports.format.csv')],
              ['json', v.t('exports.format.json')],
            ]}
          />
          <Select name="segment" value="" label={v.t('exports.segment')} options={SegmentOptions(v)} />
          <Select
            name="lang"
            value={v.lang}
            label={v.t('exports.lang')}
            options={[
              ['ja', v.t('exports.lang.ja')],
              ['en', v.t('exports.lang.en')],
            ]}
          />
          <button type="submit" class="primary">
            {v.t('exports.download')}
          </button>
        </form>
      </section>
      <section class="card">
        <h2>{v.t('exports.recent')}</h2>
        <Table
          v={v}
          rows={recent}
          head={false}
          columns={[
            { head: v.t('auditlog.at'), cell: (r) => <Time v={v} at={r.at} /> },
            { head: v.t('auditlog.actor'), cell: (r) => r.actor },
            { head: v.t('exports.format'), cell: (r) => String((r.detail as ExportDetail).format ?? '').toUpperCase() },
            { head: v.t('exports.segment'), cell: (r) => (r.target === '*' ? v.t('segment.all') : segmentName(v, r.target)) },
            { head: '', class: 'num', cell: (r) => v.t('exports.rows', { n: (r.detail as ExportDetail).rows ?? 0 }) },
            { head: v.t('auditlog.address'), cell: (r) => r.address },
          ]}
        />
      </section>
    </Layout>
  );
}
