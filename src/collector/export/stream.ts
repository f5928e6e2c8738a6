import type { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import { MamoriError } from '../../shared';

/** The rejection when the destination goes away (a client that hung up) before the export ends. */
function closedEarly(): MamoriError {
  return new MamoriError('unavailable', 'the destination closed before the export was complete');
}

/**
 * Throws when `out` can take nothing more: destroyed (a client that hung up, or an error) or
 * already ended.
 * @throws MamoriError `unavailable`.
 */
export function assertOpen(out: Writable): void {
  if (out.destroyed || out.writableEnded) throw closedEarly();
}

/**
 * Resolves when `source` emits `event`; rejects with `out`'s error, or with what `onClose` returns
 * when `out` closes first (resolving when it returns nothing). Listeners go once it settles.
 */
function settleOn(source: EventEmitter, event: string, out: Writable, onClose: () => Error | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error) => {
      source.off(event, onEvent);
      out.off('error', onError);
      out.off('close', onClosed);
      if (error) reject(error);
      else resolve();
    };
    const onEvent = () => settle();
    const onError = (error: Error) => settle(error);
    const onClosed = () => settle(onClose());
    source.once(event, onEvent);
    out.once('error', onError);
    out.once('close', onClosed);
  });
}

/**
 * Resolves when `source` emits `drain`. Rejects when `out` errors or closes first: a download the
 * client abandoned never drains, and waiting for it would pin the export's memory forever.
 * `source` is `out` itself, or a stream inside a writer that feeds `out`.
 * @throws MamoriError `unavailable` when `out` closes first; `out`'s own error when it errors.
 */
export function drained(source: EventEmitter, out: Writable): Promise<void> {
  if (out.destroyed || out.writableFinished) return Promise.reject(closedEarly());
  return settleOn(source, 'drain', out, closedEarly);
}

/**
 * Writes one chunk and waits for `drain` when `out` asks for it, so a slow reader slows the export
 * instead of growing the buffer.
 * @throws MamoriError `unavailable` when `out` is already closed or closes while we wait.
 */
export async function writeChunk(out: Writable, chunk: string): Promise<void> {
  assertOpen(out);
  if (!out.write(chunk, 'utf8')) await drained(out, out);
}

/**
 * Resolves once `out` has flushed everything (`finish`), or rejects when it closes or errors first.
 * Used where a writer ends `out` itself and would otherwise wait for a `finish` that never comes.
 * @throws MamoriError `unavailable` when `out` closes before finishing; `out`'s own error.
 */
export function finishedOrClosed(out: Writable): Promise<void> {
  if (out.writableFinished) return Promise.resolve();
  if (out.destroyed) return Promise.reject(closedEarly());
  return settleOn(out, 'finish', out, () => (out.writableFinished ? undefined : closedEarly()));
}

/** Ends `out` and waits for it to flush. @throws as {@link finishedOrClosed}. */
export async function endStream(out: Writable): Promise<void> {
  const done = finishedOrClosed(out);
  if (!out.writableEnded) out.end();
  await done;
}
