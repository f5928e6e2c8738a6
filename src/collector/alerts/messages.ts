/**
 * The alert mail's words (docs/design.md#alert-mail), Japanese first, English second; terms from
 * the glossary. `{name}` is replaced by a value made inert first (see format.ts).
 */
export const LANGUAGES = ['ja', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

export interface AlertText {
  subject: string;
  /** The first line of the body, before the facts. */
  lead: string;
}

const ja = {
  prefix: '【Mamori】',
  kinds: {
    incident: { subject: 'インシデントの報告 受付番号 {receipt} ({hostname})', lead: '端末からインシデントが報告されました。速やかに確認してください。' },
    tamper: { subject: '改ざんを検知 ({hostname})', lead: '端末で改ざんを検知しました。' },
    drift: { subject: 'ポリシーの逸脱を修正 ({hostname})', lead: '端末でセキュリティポリシーからの逸脱を検知し、修正しました。' },
    chain_broken: { subject: 'ログの完全性: 異常 ({hostname})', lead: '端末のログの完全性に異常があります (ハッシュチェーンが途切れています)。' },
    degraded: { subject: '保護機能が一部停止しています ({hostname})', lead: '端末の保護機能が一部停止しています。' },
    not_seen: { subject: '{days} 日以上接続のない端末 ({hostname})', lead: '端末が {days} 日以上コレクターに接続していません。' },
    agent_stopped: { subject: 'エージェントの停止 ({hostname})', lead: '端末のエージェントが停止または解除されました。' },
    exception_requested: { subject: '一時利用許可の利用申請 申請コード {requestCode} ({hostname})', lead: '端末から外部記録媒体の利用申請がありました。' },
    blocked_digest: { subject: '外部記録媒体の使用禁止 {count} 件 ({period})', lead: '次の期間に外部記録媒体をブロックしました。' },
    test: { subject: 'テストメール', lead: 'Mamori の通知メールの設定を確認するためのテストメールです。' },
  },
  labels: {
    hostname: '端末',
    agentId: '端末 ID',
    segment: '区分',
    at: '日時',
    receipt: '受付番号',
    category: '区分 (インシデント)',
    description: '内容',
    contact: '連絡先',
    what: '対象',
    detail: '詳細',
    control: '対象',
    expected: '期待値',
    found: '検出値',
    seq: 'seq',
    reason: '理由',
    lastSeen: '最終接続',
    requestCode: '申請コード',
    device: '媒体',
    minutes: '期間 (分)',
    count: '件数',
    period: '期間',
    link: 'コンソール',
  },
  segments: { mynumber: 'マイナンバー利用事務系', lgwan: 'LGWAN 接続系', internet: 'インターネット接続系' },
  categories: {
    suspicious_email: '不審なメール',
    malware: 'ウイルス・ランサムウェア感染の疑い',
    unauthorized_access: '不正アクセスの疑い',
    data_leak: '情報の誤送信・漏えい',
    loss_theft: '端末・媒体の紛失・盗難',
    other: 'その他',
  },
  periods: { hourly: '1 時間', daily: '1 日' },
  footer: 'このメールは Mamori コレクターが自動で送信しています。',
};

type Catalogue = typeof ja;

const en: Catalogue = {
  prefix: '[Mamori] ',
  kinds: {
    incident: { subject: 'Incident reported, receipt number {receipt} ({hostname})', lead: 'A terminal reported an incident. Please look at it now.' },
    tamper: { subject: 'Tamper detected ({hostname})', lead: 'Tampering was detected on a terminal.' },
    drift: { subject: 'Policy drift corrected ({hostname})', lead: 'A terminal drifted from its policy; the agent corrected it.' },
    chain_broken: { subject: 'Log integrity: broken ({hostname})', lead: "A terminal's log integrity is broken (its hash chain does not continue)." },
    degraded: { subject: 'Protection degraded ({hostname})', lead: "Part of a terminal's protection has stopped." },
    not_seen: { subject: 'Terminal not seen for {days} days ({hostname})', lead: 'A terminal has not reached the collector for {days} days or more.' },
    agent_stopped: { subject: 'Agent stopped ({hostname})', lead: "A terminal's agent stopped or was released." },
    exception_requested: {
      subject: 'Temporary exception request, request code {requestCode} ({hostname})',
      lead: 'A terminal requested the use of removable media.',
    },
    blocked_digest: { subject: 'Removable media blocked: {count} ({period})', lead: 'Removable media was blocked in this period.' },
    test: { subject: 'Test mail', lead: "This is a test of Mamori's alert mail settings." },
  },
  labels: {
    hostname: 'Terminal',
    agentId: 'Terminal ID',
    segment: 'Segment',
    at: 'Time',
    receipt: 'Receipt number',
    category: 'Category',
    description: 'Description',
    contact: 'Contact',
    what: 'What',
    detail: 'Detail',
    control: 'Control',
    expected: 'Expected',
    found: 'Found',
    seq: 'seq',
    reason: 'Reason',
    lastSeen: 'Last seen',
    requestCode: 'Request code',
    device: 'Device',
    minutes: 'Minutes',
    count: 'Count',
    period: 'Period',
    link: 'Console',
  },
  segments: { mynumber: 'My Number segment', lgwan: 'LGWAN segment', internet: 'Internet segment' },
  categories: {
    suspicious_email: 'suspicious email',
    malware: 'suspected malware or ransomware',
    unauthorized_access: 'suspected unauthorized access',
    data_leak: 'misdelivery or leak of information',
    loss_theft: 'loss or theft of a device or medium',
    other: 'other',
  },
  periods: { hourly: '1 hour', daily: '1 day' },
  footer: 'This mail was sent by the Mamori collector.',
};

export const MESSAGES: Record<Language, Catalogue> = { ja, en };
export type AlertKind = keyof Catalogue['kinds'];
export type FactLabel = keyof Catalogue['labels'];
