import type { Kysely } from 'kysely';
import type { SigningKey } from './crypto';
import type { DbEngine } from './db/connect';
import type { Database } from './db/schema';

/** What every route needs: the database and the policy signing key. Nothing else holds state. */
export interface CollectorContext {
  db: Kysely<Database>;
  engine: DbEngine;
  key: SigningKey;
}
