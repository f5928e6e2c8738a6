import type { Kysely } from 'kysely';
import type { Clock } from '../shared';
import type { SigningKey } from './crypto';
import type { DbEngine } from './db/connect';
import type { Database } from './db/schema';

/** What every route needs: the database, the policy signing key and the clock. Nothing else holds state. */
export interface CollectorContext {
  db: Kysely<Database>;
  engine: DbEngine;
  key: SigningKey;
  /** Every time-dependent decision reads this clock (tests set it). */
  clock: Clock;
}
