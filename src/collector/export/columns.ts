/**
 * The ledger export's columns (docs/design.md#ledger-export), in order, with their
 * Japanese and English headers. CSV, XLSX and JSON all take them from here.
 */
export const LEDGER_COLUMNS = [
  { key: 'agent_id', ja: '端末ID', en: 'agent_id', type: 'text' },
  { key: 'hostname', ja: 'ホスト名', en: 'hostname', type: 'text' },
  { key: 'segment', ja: '区分', en: 'segment', type: 'text' },
  { key: 'os', ja: 'OS', en: 'os', type: 'text' },
  { key: 'os_version', ja: 'OSバージョン', en: 'os_version', type: 'text' },
  { key: 'manufacturer', ja: '製造元', en: 'manufacturer', type: 'text' },
  { key: 'model', ja: '機種', en: 'model', type: 'text' },
  { key: 'serial', ja: '製造番号', en: 'serial', type: 'text' },
  { key: 'cpu', ja: 'CPU', en: 'cpu', type: 'text' },
  { key: 'memory_gb', ja: 'メモリ(GB)', en: 'memory_gb', type: 'number' },
  { key: 'disks', ja: 'ディスク', en: 'disks', type: 'text' },
  { key: 'ip_addresses', ja: 'IPアドレス', en: 'ip_addresses', type: 'text' },
  { key: 'mac_addresses', ja: 'MACアドレス', en: 'mac_addresses', type: 'text' },
  { key: 'usb_devices', ja: 'USB機器', en: 'usb_devices', type: 'text' },
  { key: 'last_user', ja: '最終ログオンユーザー', en: 'last_user', type: 'text' },
  { key: 'last_seen', ja: '最終接続', en: 'last_seen', type: 'date' },
  { key: 'policy_version', ja: 'ポリシー版', en: 'policy_version', type: 'number' },
  { key: 'enforcement', ja: '保護状態', en: 'enforcement', type: 'text' },
  { key: 'blocked_7d', ja: 'ブロック件数(7日)', en: 'blocked_7d', type: 'number' },
  { key: 'agent_version', ja: 'エージェント版', en: 'agent_version', type: 'text' },
  // The sync trust of docs/design.md#sync-trust: what the terminal still holds, whether it is stuck,
  // and where and why its log chain was flagged.
  { key: 'pending_events', ja: '送信待ちの記録', en: 'pending_events', type: 'number' },
  { key: 'stalled', ja: '送信の停滞', en: 'stalled', type: 'text' },
  { key: 'chain_broken_seq', ja: 'ログの異常(seq)', en: 'chain_broken_seq', type: 'number' },
  { key: 'chain_broken_reason', ja: 'ログの異常の理由', en: 'chain_broken_reason', type: 'text' },
] as const;

/** A column's key, as in the JSON export. */
export type LedgerKey = (typeof LEDGER_COLUMNS)[number]['key'];
/**
 * One terminal's line of the ledger. Strings are untrusted (they come from the terminal) and go
 * out as they are in JSON; CSV and XLSX neutralise them. A column's `type` says how XLSX types the
 * cell: `date` columns hold ISO 8601 UTC text, `number` columns numbers.
 */
export type LedgerRow = Record<LedgerKey, string | number | null>;
/** The header language: Japanese (the default) or English (the JSON keys). */
export type ExportLang = 'ja' | 'en';

/** The header row in `lang`, in column order. Throws nothing. */
export function headers(lang: ExportLang): string[] {
  return LEDGER_COLUMNS.map((c) => c[lang]);
}

/** `端末台帳_YYYYMMDD.ext` (ja) or `ledger_YYYYMMDD.ext` (en), dated in Japan's time zone. */
export function exportFileName(lang: ExportLang, ext: string, at: Date): string {
  const day = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit' }).format(at).replace(/-/g, '');
  return `${lang === 'ja' ? '端末台帳' : 'ledger'}_${day}.${ext}`;
}
