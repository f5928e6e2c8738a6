import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { NewEvent } from '../../shared';
import type { LoginPass, LoginSource, LoginState } from './linux-source';
import type { CommandRunner } from '../os/command';
import { STATE_KEYS } from '../state-keys';

/** The Security log events Mamori reads. */
export const SECURITY_EVENT_IDS = [4624, 4625, 4634, 4647, 4800, 4801] as const;

/** Interactive (2), unlock (7), remote interactive (10), cached interactive (11). */
const KEPT_LOGON_TYPES = new Set([2, 7, 10, 11]);

/** 4625's Status/SubStatus, as documented for the event. */
export const FAILURE_REASONS: Record<string, string> = {
  '0xc000006a': 'wrong password',
  '0xc0000064': 'no such user',
  '0xc0000234': 'account locked out',
  '0xc0000072': 'account disabled',
  '0xc000006f': 'outside allowed hours',
  '0xc0000070': 'workstation not allowed',
  '0xc0000071': 'password expired',
  '0xc0000193': 'account expired',
  '0xc0000133': 'clock out of sync with the domain controller',
  '0xc0000224': 'password must be changed',
  '0xc000015b': 'logon type not granted',
  '0xc000006d': 'bad user name or password',
  '0xc000005e': 'no logon servers available',
};

/** A Security log record, as far as Mamori reads it. */
export interface SecurityRecord {
  eventId: number;
  recordId: number;
  time: string;
  data: Record<string, string>;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => name === 'Event' || name === 'Data',
  processEntities: true,
});

/**
 * Parses `wevtutil qe Security /f:xml` output: a run of `<Event>` elements with no root.
 * Events that lack an id, a record id or a time are counted as bad, not thrown.
 */
export function parseWevtutilXml(xml: string): { records: SecurityRecord[]; bad: number } {
  // Each <Event> is parsed on its own, so one damaged record (or a cut-off last one) costs only
  // itself; text outside any event counts as one bad record.
  const chunks = xml.match(/<Event[\s>][\s\S]*?<\/Event>/g) ?? [];
  const leftover = chunks.reduce((rest, c) => rest.replace(c, ''), xml.replace(/^\uFEFF/, '').replace(/<\?xml[^>]*\?>/g, '')).trim();
  let bad = leftover ? 1 : 0;
  const valid = chunks.filter((c) => {
    if (XMLValidator.validate(c) === true) return true;
    bad++;
    return false;
  });
  const doc = parser.parse(`<Events>${valid.join('')}</Events>`) as { Events?: { Event?: unknown[] } };
  const records: SecurityRecord[] = [];
  for (const raw of doc.Events?.Event ?? []) {
    const e = raw as { System?: Record<string, unknown>; EventData?: { Data?: unknown[] } };
    const system = e.System ?? {};
    const idNode = system.EventID as unknown;
    const eventId = Number(typeof idNode === 'object' && idNode !== null ? (idNode as { '#text'?: string })['#text'] : idNode);
    const recordId = Number(system.EventRecordID);
    const time = (system.TimeCreated as { '@SystemTime'?: string } | undefined)?.['@SystemTime'];
    const parsedTime = time ? new Date(time) : null;
    if (!Number.isInteger(eventId) || !Number.isInteger(recordId) || !parsedTime || Number.isNaN(parsedTime.getTime())) {
      bad++;
      continue;
    }
    const data: Record<string, string> = {};
    for (const d of e.EventData?.Data ?? []) {
      if (typeof d === 'object' && d !== null && '@Name' in d) {
        const node = d as { '@Name': string; '#text'?: unknown };
        data[node['@Name']] = node['#text'] === undefined ? '' : String(node['#text']);
      }
    }
    records.push({ eventId, recordId, time: parsedTime.toISOString(), data });
  }
  return { records, bad };
}

const present = (v: string | undefined) => (v && v !== '-' ? v : undefined);

function user(data: Record<string, string>): string {
  const name = data.TargetUserName ?? '';
  const domain = present(data.TargetDomainName);
  return domain && name ? `${domain}\\${name}` : name;
}

/** Maps one Security record to an event, or null for what Mamori does not keep (service logons …). */
export function securityRecordToEvent(r: SecurityRecord): NewEvent | null {
  const logonType = r.data.LogonType === undefined ? undefined : Number(r.data.LogonType);
  const remoteHost = present(r.data.IpAddress) ?? present(r.data.WorkstationName);
  const base = { user: user(r.data), source: 'security-log' as const, time: r.time };
  switch (r.eventId) {
    case 4624:
      if (logonType === undefined || !KEPT_LOGON_TYPES.has(logonType)) return null;
      return { type: 'login.success', payload: { ...base, logonType, ...(remoteHost && logonType === 10 ? { remoteHost } : {}) } };
    case 4625: {
      if (logonType !== undefined && !KEPT_LOGON_TYPES.has(logonType)) return null;
      const sub = (r.data.SubStatus ?? '').toLowerCase();
      const status = (r.data.Status ?? '').toLowerCase();
      const reason = FAILURE_REASONS[sub] ?? FAILURE_REASONS[status] ?? (sub || status || 'unknown');
      return { type: 'login.failure', payload: { ...base, ...(logonType !== undefined ? { logonType } : {}), ...(remoteHost ? { remoteHost } : {}), reason } };
    }
    case 4634:
      if (logonType === undefined || !KEPT_LOGON_TYPES.has(logonType)) return null;
      return { type: 'logout', payload: { ...base, logonType } };
    case 4647:
      return { type: 'logout', payload: { ...base, reason: 'user initiated' } };
    case 4800:
      return { type: 'session.lock', payload: base };
    case 4801:
      return { type: 'session.unlock', payload: base };
    default:
      return null;
  }
}

/** The XPath for wevtutil: Mamori's event ids after the bookmarked record. */
export function securityQuery(afterRecordId: number): string {
  const ids = SECURITY_EVENT_IDS.map((id) => `EventID=${id}`).join(' or ');
  return `*[System[(${ids}) and EventRecordID>${Math.max(0, Math.floor(afterRecordId))}]]`;
}

/** Reads new Security log records through wevtutil, bookmarked by EventRecordID. */
export function createWindowsLoginSource(opts: { runner: CommandRunner; state: LoginState; batch?: number }): LoginSource {
  return {
    async readNew(): Promise<LoginPass> {
      const after = Number(opts.state.getState(STATE_KEYS.loginsSecurityRecord) ?? 0);
      const { stdout, code } = await opts.runner('wevtutil', ['qe', 'Security', `/q:${securityQuery(after)}`, '/f:xml', '/rd:false', `/c:${opts.batch ?? 1000}`]);
      if (code !== 0) throw new Error(`wevtutil exited ${code}`);
      const { records, bad } = parseWevtutilXml(stdout);
      records.sort((a, b) => a.recordId - b.recordId);
      const events = records.map(securityRecordToEvent).filter((e): e is NewEvent => e !== null);
      const last = records.length ? records[records.length - 1]!.recordId : after;
      return { events, badRecords: bad, state: [[STATE_KEYS.loginsSecurityRecord, String(Math.max(after, last))]] };
    },
  };
}
