/** The wait before the next cycle: the policy's interval, or a jittered backoff while offline. */
export function nextDelayMs(intervalSeconds: number, failures: number, random: () => number = Math.random): number {
  const interval = intervalSeconds * 1000;
  if (failures === 0) return interval;
  const ceiling = Math.min(interval, 5_000 * 2 ** Math.min(failures - 1, 16));
  // Jitter keeps a fleet that lost its collector together from returning in one wave.
  return Math.max(1_000, Math.round(ceiling / 2 + (random() * ceiling) / 2));
}
