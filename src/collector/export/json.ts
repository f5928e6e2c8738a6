import type { Writable } from 'node:stream';
import type { LedgerRow } from './columns';
import { endStream, writeChunk } from './stream';

/**
 * Streams the ledger as one JSON array of rows keyed by the column names (docs/design.md#ledger-export), a batch per
 * chunk; ends `out` when done.
 * @returns the number of terminals written.
 * @throws whatever `batches` throws, and MamoriError `unavailable` when `out` closes early; once
 *   anything was written `out` is destroyed, so a cut-off array never parses as a whole ledger.
 */
export async function writeLedgerJson(batches: AsyncIterable<LedgerRow[]>, out: Writable): Promise<number> {
  let count = 0;
  try {
    for await (const batch of batches) {
      if (batch.length === 0) continue;
      await writeChunk(out, `${count === 0 ? '[' : ','}${batch.map((row) => JSON.stringify(row)).join(',')}`);
      count += batch.length;
    }
    await writeChunk(out, count === 0 ? '[]' : ']');
    await endStream(out);
    return count;
  } catch (error) {
    if (count > 0) out.destroy();
    throw error;
  }
}
