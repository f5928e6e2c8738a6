/** The tray menu's and notifications' message catalogue: Japanese first, English second. */
export const MAIN_MESSAGES = {
  ja: {
    'tray.protected': 'ポリシー適用中',
    'tray.alert': 'USB メモリをブロックしました',
    'tray.degraded': '保護機能が一部停止しています',
    'tray.offline': 'コレクターに 24 時間以上接続していません',
    'tray.unreachable': 'エージェントに接続できません',
    'reason.device_notices_unavailable': 'USB 機器の接続通知を受け取れません（30 秒ごとの確認で対処します）',
    'reason.devices_unreadable': 'USB 機器の一覧を読み取れません',
    'reason.controls_not_applied': 'OS の制御を設定できませんでした',
    'reason.store_error': 'ローカルログに記録できませんでした',
    'menu.status': '{segment}・ポリシー v{version}',
    'menu.report': 'インシデントを報告…',
    'menu.request': 'USBメモリの利用申請…',
    'menu.info': '端末情報',
    'menu.quit': '終了',
    'notify.blocked.title': 'ブロックしました',
    'notify.blocked.body': 'この USB メモリはセキュリティポリシーにより使用できません: {device}',
    'notify.blocked.action': '利用を申請する',
    'segment.mynumber': 'マイナンバー利用事務系',
    'segment.lgwan': 'LGWAN 接続系',
    'segment.internet': 'インターネット接続系',
  },
  en: {
    'tray.protected': 'Protected',
    'tray.alert': 'A USB stick was blocked',
    'tray.degraded': 'Protection degraded',
    'tray.offline': 'No contact with the collector for over 24 hours',
    'tray.unreachable': 'Cannot reach the agent',
    'reason.device_notices_unavailable': 'USB device notices are unavailable (checked every 30 s instead)',
    'reason.devices_unreadable': 'The USB devices cannot be read',
    'reason.controls_not_applied': 'An OS control could not be set',
    'reason.store_error': 'The local log could not record enforcement',
    'menu.status': '{segment} · policy v{version}',
    'menu.report': 'Report an incident…',
    'menu.request': 'Request to use a USB stick…',
    'menu.info': 'Terminal information',
    'menu.quit': 'Quit',
    'notify.blocked.title': 'Blocked',
    'notify.blocked.body': 'This USB stick cannot be used under the security policy: {device}',
    'notify.blocked.action': 'Request',
    'segment.mynumber': 'My Number segment',
    'segment.lgwan': 'LGWAN segment',
    'segment.internet': 'Internet segment',
  },
} as const;

export type MainLang = keyof typeof MAIN_MESSAGES;
export type MainMessageKey = keyof (typeof MAIN_MESSAGES)['ja'];

/** A message with `{name}` placeholders filled. */
export function mainText(lang: MainLang, key: MainMessageKey, vars: Record<string, string> = {}): string {
  return MAIN_MESSAGES[lang][key].replace(/\{(\w+)\}/g, (_, name: string) => vars[name] ?? '');
}

/** Japanese unless the OS locale is something else entirely. */
export function langFromLocale(locale: string): MainLang {
  return locale.toLowerCase().startsWith('ja') ? 'ja' : 'en';
}
