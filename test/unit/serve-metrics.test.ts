import { describe, expect, it } from 'vitest';
import { Registry, type RegistryContentType } from 'prom-client';
import { PortSlots } from '../../src/serve/portSlots.js';
import { Exporter } from '../../src/serve/exporter.js';
import { checkExposure, isLoopback, parseListen } from '../../src/util/listen.js';
import { CtopError } from '../../src/errors.js';
import { ZERO_STATS, type Sample } from '../../src/model/sample.js';
import { portCount } from '../support/sample.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import type { OccupancyFeed, OccupancyInput } from '../../src/model/occupancy.js';
import { LiveWindows } from '../../src/source/windows.js';

function sample(ports: [number, number, number][], opts: { netns?: number[]; drop?: number } = {}): Sample {
  const nss = opts.netns ?? [1];
  return {
    monoMs: 0,
    wallTime: '2026-11-25T10:00:00.000Z',
    probe: { tier: 'netfilter', programs: [{ name: 'ctop_nf_confirm', hook: 'x', attached: true }], refused: [] },
    ports: ports.map(([netns, port, inserts]) => portCount({ netns, family: 'ipv4', proto: 17, port, inserts, drops: 0 })),
    tuples: [],
    totals: { inserts: 0, drops: 0, portOverflow: 2, tupleOverflow: 0, dropUnparsed: 0, netnsOverflow: 0, otherNfDrops: 0, dropTupleOverflow: 0 },
    namespaces: nss.map((inode) => ({ inode, name: `ns${inode}`, count: 10 * inode, stats: { ...ZERO_STATS, drop: opts.drop ?? 0 }, links: 4 })),
    max: 100,
    buckets: 64,
    capacity: { ports: 8192, tuples: 16384, dropTuples: 4096 },
    tupleEntries: 0,
    dropTupleEntries: 0,
    netnsErrors: [],
  };
}

/**
 * The windows `ctop serve` makes of these cumulative samples: the window
 * pipeline, the first window from zero, no tuples. start() reads one sample
 * (serve's banner), then each window one more.
 */
async function serveWindows(samples: Sample[], occupancy?: OccupancyFeed): Promise<SnapshotV1[]> {
  const queue = [samples[0]!, ...samples];
  const live = new LiveWindows({ start: async () => {}, sample: () => queue.shift()!, close: () => {} }, { host: 'h', kernel: 'k' }, { top: 0, unsorted: true, tuples: false, fromZero: true });
  await live.start();
  live.attachOccupancy(occupancy);
  return samples.map(() => live.next()!);
}

async function values(reg: Registry<RegistryContentType>, name: string): Promise<Record<string, number>> {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === name);
  const out: Record<string, number> = {};
  for (const v of m?.values ?? []) out[Object.entries(v.labels).map(([k, l]) => `${k}=${l}`).join(',')] = v.value;
  return out;
}

describe('PortSlots: a fixed set of K labelled ports, the rest in other', () => {
  it('fills free slots busiest first, then folds newcomers into other for good', () => {
    const s = new PortSlots(2);
    const a1 = s.assign(new Map([['a', { inserts: 1, drops: 0 }], ['b', { inserts: 5, drops: 0 }], ['c', { inserts: 3, drops: 0 }]]));
    expect([...a1.labelled.keys()]).toEqual(['b', 'c']);
    expect(a1.other).toEqual({ inserts: 1, drops: 0 });
    // 'a' becomes the busiest: it still has no slot, 'c' keeps its own
    const a2 = s.assign(new Map([['a', { inserts: 100, drops: 1 }], ['c', { inserts: 1, drops: 0 }]]));
    expect([...a2.labelled.keys()]).toEqual(['c']);
    expect(a2.other).toEqual({ inserts: 100, drops: 1 });
    expect(s.keys()).toEqual(['b', 'c']);
  });
  it('gives back slots only on release; K=0 folds everything', () => {
    const s = new PortSlots(1);
    s.assign(new Map([['1/x', { inserts: 1, drops: 0 }]]));
    expect(s.release((k) => k.startsWith('1/'))).toEqual(['1/x']);
    expect(s.assign(new Map([['2/y', { inserts: 1, drops: 0 }]])).added).toEqual(['2/y']);
    const zero = new PortSlots(0);
    expect(zero.assign(new Map([['a', { inserts: 4, drops: 2 }]])).other).toEqual({ inserts: 4, drops: 2 });
  });
});

describe('Exporter', () => {
  it('advances counters by each window; other and labelled series never go down', async () => {
    const reg = new Registry<RegistryContentType>();
    const e = new Exporter(reg, 1);
    for (const w of await serveWindows([sample([[1, 53, 10]]), sample([[1, 53, 15], [1, 443, 7]]), sample([[1, 53, 15], [1, 443, 20], [1, 80, 2]])])) e.update(w);
    const ins = await values(reg, 'ctop_inserts_total');
    // 443: 7 then 13 more, 80: 2, all after the one slot went to 53
    expect(ins).toEqual({ 'port=other': 22, 'netns=1,family=ipv4,proto=udp,port=53': 15 });
    expect(await values(reg, 'ctop_netns_inserts_total')).toEqual({ 'netns=1': 37 });
    expect(await values(reg, 'ctop_port_series')).toEqual({ 'state=labelled': 1 });
    expect(await values(reg, 'ctop_overflow_total')).toMatchObject({ 'map=ports': 2 });
    expect(await values(reg, 'ctop_conntrack_fill_ratio')).toEqual({ '': 0.1 });
    expect(await values(reg, 'ctop_samples_total')).toEqual({ '': 3 });
  });

  it('statistics start at the kernel cumulative value; a vanished namespace ends its series and frees its slots', async () => {
    const reg = new Registry<RegistryContentType>();
    const e = new Exporter(reg, 1);
    const [w1, w2] = await serveWindows([sample([[2, 53, 4]], { netns: [1, 2], drop: 7 }), sample([[2, 53, 4], [1, 22, 3]], { netns: [1], drop: 9 })]);
    e.update(w1!);
    expect((await values(reg, 'ctop_conntrack_stat_total'))['netns=2,stat=drop']).toBe(7);
    expect(Object.keys(await values(reg, 'ctop_inserts_total'))).toContain('netns=2,family=ipv4,proto=udp,port=53');
    e.update(w2!);
    const ins = await values(reg, 'ctop_inserts_total');
    expect(ins).toEqual({ 'port=other': 0, 'netns=1,family=ipv4,proto=udp,port=22': 3 });
    const st = await values(reg, 'ctop_conntrack_stat_total');
    expect(st['netns=1,stat=drop']).toBe(9);
    expect(st['netns=2,stat=drop']).toBeUndefined();
    expect(await values(reg, 'ctop_conntrack_entries')).toEqual({ 'netns=1': 10 });
  });

  it("each program's runs the kernel skipped (recursion) are a gauge per program, 0 where none", async () => {
    const reg = new Registry<RegistryContentType>();
    const s = sample([[1, 53, 10]]);
    s.probe = {
      tier: 'fentry',
      programs: [
        { name: 'ctop_fe_confirm_exit', hook: 'fexit/__nf_conntrack_confirm', attached: true, skippedRuns: 3 },
        { name: 'ctop_fe_unlink', hook: 'fentry/__nf_ct_delete_from_lists', attached: true },
      ],
      refused: [],
    };
    new Exporter(reg, 5).update((await serveWindows([s]))[0]!);
    expect(await values(reg, 'ctop_probe_program_skipped_runs')).toEqual({ 'program=ctop_fe_confirm_exit': 3, 'program=ctop_fe_unlink': 0 });
  });

  it('renders in both exposition formats', async () => {
    for (const type of [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE]) {
      const reg = new Registry<RegistryContentType>();
      reg.setContentType(type);
      new Exporter(reg, 5).update((await serveWindows([sample([[1, 53, 10]])]))[0]!);
      const text = await reg.metrics();
      expect(text).toMatch(/^ctop_inserts_total\{netns="1",family="ipv4",proto="udp",port="53"\} 10$/m);
      expect(text).toMatch(/^ctop_inserts_total\{port="other"\} 0$/m);
    }
  });
});

describe('--listen and the loopback rule', () => {
  it('parses HOST:PORT and [v6]:PORT', () => {
    expect(parseListen('127.0.0.1:9633')).toEqual({ host: '127.0.0.1', port: 9633 });
    expect(parseListen('[::1]:9633')).toEqual({ host: '::1', port: 9633 });
    for (const bad of ['9633', '127.0.0.1', '127.0.0.1:0', '1.2.3.4:65536', '::1:9633', '[zz]:1', 'a b:1']) {
      expect(() => parseListen(bad)).toThrow(CtopError);
    }
  });
  it('loopback only, unless --allow-remote', () => {
    for (const h of ['127.0.0.1', '127.3.4.5', '::1', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '::ffff:10.0.0.1']) expect(isLoopback(h)).toBe(false);
    expect(() => checkExposure({ host: '0.0.0.0', port: 1 }, false)).toThrow(/not a loopback address/);
    expect(() => checkExposure({ host: '0.0.0.0', port: 1 }, true)).not.toThrow();
  });
});

describe('Exporter: occupancy gauge', () => {
  const census = (ports: [number, number][]): OccupancyInput => ({
    census: {
      method: 'ctnetlink-dump',
      takenAt: '2026-11-25T09:59:58.000Z',
      namespaces: [{ inode: 1, entries: ports.reduce((a, [, n]) => a + n, 0), ports: ports.map(([port, entries]) => ({ family: 'ipv4', proto: 6, port, entries })), sources: [] }],
      walk: null,
      buckets: 64,
      hashEntries: 0,
      cpuMs: 5,
      wallMs: 6,
    },
    cost: { censuses: 3, lastCpuMs: 5, lastWallMs: 6, intervalMs: 250, cpuShare: 0.019, budgetShare: 0.02 },
  });

  it('the K ports holding most get a series, the rest add up in other; a port that leaves the K ends its series', async () => {
    const reg = new Registry();
    const e = new Exporter(reg, 2);
    const inputs = [census([[443, 3000], [80, 10], [22, 5], [53, 1]]), census([[443, 2000], [22, 50], [80, 1]])];
    const feed: OccupancyFeed = { input: () => inputs.shift(), error: () => undefined, close: () => {} };
    const [w1, w2] = await serveWindows([sample([]), sample([])], feed);
    e.update(w1!);
    e.updateOccupancy(w1!);
    expect(await values(reg, 'ctop_port_occupancy_entries')).toEqual({
      'netns=1,family=ipv4,proto=tcp,port=443': 3000,
      'netns=1,family=ipv4,proto=tcp,port=80': 10,
      'port=other': 6,
    });
    expect(await values(reg, 'ctop_occupancy_census_age_seconds')).toEqual({ '': 2 });
    expect(await values(reg, 'ctop_occupancy_census_cpu_ratio')).toEqual({ '': 0.019 });
    e.update(w2!);
    e.updateOccupancy(w2!);
    expect(await values(reg, 'ctop_port_occupancy_entries')).toEqual({
      'netns=1,family=ipv4,proto=tcp,port=443': 2000,
      'netns=1,family=ipv4,proto=tcp,port=22': 50,
      'port=other': 1,
    });
  });
});
