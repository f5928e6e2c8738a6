import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError, systemClock, type Clock } from '../shared';
import { acceptPolicy, isEd25519PublicKey, loadEnrollment, saveEnrollment, verifyPolicySignature, type Enrollment } from './policy';
import type { EventStore } from './store';
import { createSyncClient, type SyncClient } from './sync-client';
import { STATE_KEYS } from './state-keys';

/**
 * The terminal's stable machine id: /etc/machine-id under the system root where there is one,
 * otherwise an id made once and kept in the store.
 */
export function machineId(store: EventStore, systemRoot: string): string {
  for (const file of ['etc/machine-id', 'var/lib/dbus/machine-id']) {
    try {
      const id = fs.readFileSync(path.join(systemRoot, file), 'utf8').trim();
      if (/^[0-9a-f]{32}$/i.test(id)) return id.toLowerCase();
    } catch {
      // not on this OS: fall through to the stored id
    }
  }
  let id = store.getState(STATE_KEYS.machineId);
  if (!id) {
    id = crypto.randomUUID();
    store.setState(STATE_KEYS.machineId, id);
  }
  return id;
}

export interface EnrollOptions {
  store: EventStore;
  collectorUrl: string;
  token: string;
  systemRoot: string;
  /**
   * A collector key pinned beforehand (`--pubkey`, or the installer's provision); enrollment fails
   * when the collector's differs.
   */
  expectedPublicKey?: string;
  client?: SyncClient;
  hostname?: string;
  clock?: Clock;
}

/**
 * Enrolls this terminal with a collector and pins the collector's public key (the one given, when
 * given). The enrollment and the accepted policy are stored in one transaction.
 * @throws UsageError when the URL is not http(s), the key is not an Ed25519 SPKI, or the terminal
 *   is already enrolled.
 * @throws CollectorRefusedError / CollectorUnreachableError from the collector.
 */
export async function enrollAgent(opts: EnrollOptions): Promise<Enrollment> {
  let url: URL;
  try {
    url = new URL(opts.collectorUrl);
  } catch {
    throw new UsageError(`--collector is not a URL: ${opts.collectorUrl}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--collector must be http:// or https://, not ${url.protocol}`);
  if (opts.expectedPublicKey !== undefined && !isEd25519PublicKey(opts.expectedPublicKey)) {
    throw new UsageError('--pubkey takes the Ed25519 public key `mamori collector key` prints (SPKI, base64)');
  }
  const existing = loadEnrollment(opts.store);
  if (existing) throw new UsageError(`this terminal is already enrolled as ${existing.agentId} with ${existing.collectorUrl}`);

  const collectorUrl = url.toString().replace(/\/+$/, '');
  const client = opts.client ?? createSyncClient({ baseUrl: collectorUrl });
  const response = await client.enroll({
    token: opts.token,
    hostname: opts.hostname ?? os.hostname(),
    machineId: machineId(opts.store, opts.systemRoot),
  });
  if (opts.expectedPublicKey !== undefined && response.collectorPublicKey !== opts.expectedPublicKey) {
    throw new Error('the collector presented a different public key than the one provisioned; not enrolled');
  }
  if (!verifyPolicySignature(response.policy, response.collectorPublicKey)) {
    throw new Error("the collector's policy does not verify with its own key; not enrolled");
  }
  const enrollment: Enrollment = {
    collectorUrl,
    agentId: response.agentId,
    agentToken: response.agentToken,
    segment: response.segment,
    collectorPublicKey: response.collectorPublicKey,
    unlockSecret: response.unlockSecret,
    enrolledAt: (opts.clock ?? systemClock).now().toISOString(),
  };
  opts.store.transaction(() => {
    saveEnrollment(opts.store, enrollment);
    acceptPolicy(opts.store, response.policy, enrollment, { requireFreshness: false, clock: opts.clock });
  });
  return enrollment;
}
