/**
 * glibc's utmp/wtmp/btmp record on x86-64 (`struct utmp`, 384 bytes, little-endian):
 *
 *   0  ut_type   int16 (+2 padding)     44  ut_user  char[32]       336 ut_session int32
 *   4  ut_pid    int32                  76  ut_host  char[256]      340 ut_tv      {int32 sec, int32 usec}
 *   8  ut_line   char[32]              332  ut_exit  {int16, int16} 348 ut_addr_v6 int32[4]
 *  40  ut_id     char[4]                                            364 reserved   char[20]
 *
 * Pure decoding: no file access here.
 */

export const UTMP_RECORD_SIZE = 384;

export const UT = {
  EMPTY: 0,
  RUN_LVL: 1,
  BOOT_TIME: 2,
  NEW_TIME: 3,
  OLD_TIME: 4,
  INIT_PROCESS: 5,
  LOGIN_PROCESS: 6,
  USER_PROCESS: 7,
  DEAD_PROCESS: 8,
  ACCOUNTING: 9,
} as const;

export interface UtmpRecord {
  type: number;
  pid: number;
  line: string;
  id: string;
  user: string;
  host: string;
  session: number;
  /** Seconds since the epoch, UTC. */
  seconds: number;
  microseconds: number;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** A NUL-terminated field; bytes that are not UTF-8 become U+FFFD rather than an error. */
function cString(buf: Buffer, start: number, length: number): string {
  const field = buf.subarray(start, start + length);
  const end = field.indexOf(0);
  return decoder.decode(end < 0 ? field : field.subarray(0, end));
}

/**
 * Decodes one record, or returns null when it cannot be a record glibc wrote (an unknown type, a
 * time outside 1990–2100, a microsecond count over a second): garbage to skip and count.
 */
export function decodeUtmp(buf: Buffer, offset = 0): UtmpRecord | null {
  if (buf.length - offset < UTMP_RECORD_SIZE) return null;
  const type = buf.readInt16LE(offset);
  const seconds = buf.readInt32LE(offset + 340);
  const microseconds = buf.readInt32LE(offset + 344);
  if (type < UT.EMPTY || type > UT.ACCOUNTING) return null;
  if (type !== UT.EMPTY && (seconds < 631152000 || seconds > 4102444800)) return null;
  if (microseconds < 0 || microseconds >= 1_000_000) return null;
  return {
    type,
    pid: buf.readInt32LE(offset + 4),
    line: cString(buf, offset + 8, 32),
    id: cString(buf, offset + 40, 4),
    user: cString(buf, offset + 44, 32),
    host: cString(buf, offset + 76, 256),
    session: buf.readInt32LE(offset + 336),
    seconds,
    microseconds,
  };
}

/** The record's time as ISO 8601 UTC. */
export function utmpTime(record: UtmpRecord): string {
  return new Date(record.seconds * 1000 + Math.floor(record.microseconds / 1000)).toISOString();
}
