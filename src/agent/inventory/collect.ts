import os from 'node:os';
import { InventorySnapshot, MAMORI_VERSION, sanitizeDeep, sanitizeText, type InventorySection } from '../../shared';
import type { Logger } from '../logger';
import { createUsbReader, type UsbReader } from '../os/usb';
import { createSystemProbes, type Probes } from './probes';

export interface InventoryCollectorOptions {
  systemRoot?: string;
  platform?: NodeJS.Platform;
  probes?: Partial<Probes>;
  /** The OS layer's USB reader, shared with the enforcer; this OS's by default. */
  usb?: UsbReader;
  logger?: Pick<Logger, 'warn'>;
  agentVersion?: string;
  now?: () => Date;
  /** A probe that takes longer than this counts as failed. */
  probeTimeoutMs?: number;
}

export interface InventoryCollector {
  /** Collects a snapshot; a failing probe leaves its section empty and adds a warning. */
  collect(): Promise<InventorySnapshot>;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Builds the inventory collector: systeminformation probes, and the OS layer's USB reader. */
export function createInventoryCollector(opts: InventoryCollectorOptions = {}): InventoryCollector {
  const platform = opts.platform ?? process.platform;
  const systemRoot = opts.systemRoot ?? '/';
  const usb = opts.usb ?? createUsbReader({ platform, systemRoot });
  const probes: Probes = { ...createSystemProbes(), usb: () => usb.devices(), ...opts.probes };
  const timeout = opts.probeTimeoutMs ?? 15_000;

  return {
    async collect() {
      const warnings: { section: string; message: string }[] = [];
      async function probe<K extends InventorySection>(section: K): Promise<unknown> {
        try {
          // Every probe is a source of untrusted strings, a test's or a future one's included.
          return sanitizeDeep(await withTimeout<unknown>((probes[section] as () => Promise<unknown>)(), timeout));
        } catch (err) {
          const message = sanitizeText((err as Error).message, 500);
          warnings.push({ section, message });
          opts.logger?.warn({ section }, `inventory probe ${section} failed: ${message}`);
          return undefined;
        }
      }
      const sections = ['system', 'bios', 'os', 'cpu', 'memory', 'disks', 'network', 'users', 'usb'] as const;
      const values = await Promise.all(sections.map((s) => probe(s)));
      const raw: Record<string, unknown> = {
        collectedAt: (opts.now?.() ?? new Date()).toISOString(),
        agentVersion: opts.agentVersion ?? MAMORI_VERSION,
        hostname: os.hostname(),
      };
      sections.forEach((s, i) => {
        if (values[i] !== undefined) raw[s] = values[i];
      });
      // Fill the platform from Node when the OS probe failed, so the ledger still says what it is.
      raw.os = { platform, distro: '', release: '', kernel: '', arch: os.arch(), ...(raw.os as object | undefined) };
      raw.warnings = warnings;
      const parsed = InventorySnapshot.safeParse(raw);
      if (parsed.success) return parsed.data;
      // A probe returned something the schema refuses: drop that section rather than the snapshot.
      const bad = new Set(parsed.error.issues.map((i) => String(i.path[0])));
      for (const section of bad) {
        if (section in raw && (sections as readonly string[]).includes(section)) {
          delete raw[section];
          warnings.push({ section, message: 'probe returned data the inventory schema refuses' });
        }
      }
      return InventorySnapshot.parse(raw);
    },
  };
}
