/**
 * Marks a SQLite file as Mamori's agent store (`PRAGMA application_id`, "MMRA"). Apart from
 * store.ts so that the start-up pass can recognise the file without loading the event schemas.
 */
export const APPLICATION_ID = 0x4d4d5241;
