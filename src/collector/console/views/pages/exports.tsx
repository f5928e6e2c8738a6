import type { AuditRow } from '../../queries';
import { Empty, SegmentOptions, Select, Time, segmentName } from '../components';
import { Layout } from '../layout';
import type { View } from '../view';

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
        {recent.length === 0 ? (
          <Empty v={v} />
        ) : (
          <table class="table">
            <tbody>
              {recent.map((r) => {
                const d = r.detail as { format?: string; lang?: string; rows?: number };
                return (
                  <tr>
                    <td>
                      <Time v={v} at={r.at} />
                    </td>
                    <td>{r.actor}</td>
                    <td>{String(d.format ?? '').toUpperCase()}</td>
                    <td>{r.target === '*' ? v.t('segment.all') : segmentName(v, r.target)}</td>
                    <td class="num">{v.t('exports.rows', { n: d.rows ?? 0 })}</td>
                    <td>{r.address}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </Layout>
  );
}
