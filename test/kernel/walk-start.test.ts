/**
 * The walk programs loaded, and the table found, on native threads before a
 * census needs them (src/source/walkStart.ts, the addon's WalkerStart): the
 * table the start finds is the one a walker finds by itself, the walker takes
 * the start's programs over (once), a start with other map sizes is closed
 * and unloaded, and nothing a start loaded outlives it.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native/addon.js';
import { TableWalker } from '../../src/source/hashWalk.js';
import { MAX_GROUPS, startWalk, takeStartedWalk } from '../../src/source/walkStart.js';
import { waitNoCtopPrograms } from '../support/cli.js';

const buckets = (): number => Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_buckets', 'utf8').trim());

describe('walk programs started early', () => {
  const addon = loadAddon();

  afterEach(() => {
    takeStartedWalk(-1)?.start.close(); // a test that failed midway leaves no start behind
  });

  it('finds the same table a walker finds by itself, and hands the programs over once', async () => {
    const start = new addon.WalkerStart({ maxGroups: MAX_GROUPS, maxAddrs: 64, locateOwn: true });
    const j = start.join();
    expect(j.loaded).toBe(true);
    expect(j.locateError).toBeNull();
    expect(j.loadMs).toBeGreaterThan(0);
    expect(j.locateMs).toBeGreaterThan(0);
    const w = new addon.Walker({ maxGroups: MAX_GROUPS, maxAddrs: 64 }, start);
    try {
      const own = w.locateOwn();
      expect(j.table!.base).toBe(own.base); // (the bucket is the entry's own: each made in a namespace of its own)
      expect(() => new addon.Walker({ maxGroups: MAX_GROUPS, maxAddrs: 64 }, start)).toThrow(/taken already/);
      expect(() => new addon.Walker({ maxGroups: MAX_GROUPS, maxAddrs: 64 }, {} as never)).toThrow(/needs a WalkerStart/);
    } finally {
      w.close();
      start.close();
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('a census walker takes a start of its own map sizes: programs, table and times', async () => {
    startWalk({ maxAddrs: 64, locateOwn: true, probeRead: false, rewalkAll: false });
    const walker = new TableWalker({ maxAddrs: 64 });
    try {
      const out = walker.walk({ census: true, addrs: true, top: 5, maxAddrs: 64, hashEntries: 0, threads: 1 });
      expect(out.reason).toBeUndefined();
      expect(out.result!.locatedBy).toBe('own-entry');
      expect(out.table!.size).toBe(buckets());
      expect(out.result!.inconsistentBuckets).toBeLessThanOrEqual(buckets() * 0.01);
      const phases = out.result!.phasesMs!;
      expect(phases.startWaitMs).toBeGreaterThanOrEqual(0);
      expect(phases.loadMs).toBeGreaterThan(0);
      // a second walk of the same walker reuses the table and reports no start
      const again = walker.walk({ census: true, addrs: true, top: 5, maxAddrs: 64, hashEntries: 0, threads: 1 });
      expect(again.result!.phasesMs!.startWaitMs).toBeUndefined();
      expect(again.table).toEqual(out.table);
    } finally {
      walker.close();
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('a start with other map sizes or the other walk is closed and unloaded; the walker loads its own', async () => {
    startWalk({ maxAddrs: 64, locateOwn: false, probeRead: false, rewalkAll: false });
    expect(takeStartedWalk(128)).toBeUndefined();
    expect(await waitNoCtopPrograms()).toEqual([]);
    // nor is the other walk taken (probe-read where the plain loads are wanted)
    startWalk({ maxAddrs: 64, locateOwn: false, probeRead: true, rewalkAll: false });
    expect(takeStartedWalk(64, { probeRead: false, rewalkAll: false })).toBeUndefined();
    expect(await waitNoCtopPrograms()).toEqual([]);
    startWalk({ maxAddrs: 64, locateOwn: false, probeRead: false, rewalkAll: false });
    const walker = new TableWalker({ maxAddrs: 128 });
    try {
      const out = walker.walk({ census: false, addrs: false, top: 5, maxAddrs: 128, hashEntries: 0, threads: 1 });
      expect(out.result).not.toBeNull();
      expect(out.result!.phasesMs!.startWaitMs).toBeUndefined();
    } finally {
      walker.close();
    }
    expect(takeStartedWalk(64)).toBeUndefined(); // taken (and closed) by that walker
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('a start nobody takes unloads everything when closed', async () => {
    const start = new addon.WalkerStart({ maxGroups: MAX_GROUPS, maxAddrs: 64, locateOwn: true });
    start.close();
    start.close(); // twice is fine
    expect(await waitNoCtopPrograms()).toEqual([]);
  });
});
