import { z } from 'zod';

/** The three network segments of the MIC model (三層の対策). */
export const SEGMENTS = ['mynumber', 'lgwan', 'internet'] as const;
export const Segment = z.enum(SEGMENTS);
export type Segment = z.infer<typeof Segment>;

/** A UTC timestamp in ISO 8601 (`2026-11-22T09:00:00.000Z`; an offset is accepted on input). */
export const Timestamp = z.iso.datetime({ offset: true });

/** A 4-digit lower-case hexadecimal USB id; upper case is accepted and folded. */
export const UsbId = z
  .string()
  .trim()
  .regex(/^[0-9a-fA-F]{4}$/, 'expected 4 hexadecimal digits')
  .transform((s) => s.toLowerCase());

/** Untrusted text from a device or a log: bounded, otherwise kept exactly as read. */
export const UntrustedText = z.string().max(1024);

/** A lower-case SHA-256 in hex. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 in lower-case hex');
