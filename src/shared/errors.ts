import { z } from 'zod';

/**
 * The stable error codes of the HTTP API and IPC. A client branches on the code, never on the
 * message.
 */
export const ERROR_CODES = [
  'bad_request',
  'validation_failed',
  'unauthorized',
  'forbidden',
  'not_found',
  'seq_conflict',
  'payload_too_large',
  'chain_broken',
  'rate_limited',
  'token_invalid',
  'unlock_refused',
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The error body (docs/design.md#error-codes): `{"error": {"code", "message"}}`, plus details for some codes. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    /** With `seq_conflict`: the seq the collector expects next. */
    expectedSeq: z.number().int().optional(),
    /** With `chain_broken`: the first seq that does not verify. */
    seq: z.number().int().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** The HTTP status of each code. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 400,
  unauthorized: 401,
  token_invalid: 401,
  forbidden: 403,
  not_found: 404,
  seq_conflict: 409,
  payload_too_large: 413,
  chain_broken: 422,
  unlock_refused: 403,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

/** An error that crosses a process boundary as `{code, message}`. */
export class MamoriError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: { expectedSeq?: number; seq?: number } = {},
  ) {
    super(message);
    this.name = 'MamoriError';
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

/** A command line that does not make sense: the CLI prints its message on one line and exits 2. */
export class UsageError extends Error {
  readonly code = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
