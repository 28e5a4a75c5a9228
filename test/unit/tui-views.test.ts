/** The rows each view of the live screen renders, from fixture windows. */
import { describe, expect, it } from 'vitest';
import { parseFilter, EMPTY_FILTER } from '../../src/tui/filter.js';
import { selectRows, sortKeysFor } from '../../src/tui/talkers.js';
import { topK } from '../../src/model/topK.js';
import { fixtureWindow } from '../support/tuiFixtures.js';

const s = fixtureWindow(2); // window 3: drops have started

describe('views', () => {
  it('ports: busiest first, with rates, share and the namespace', () => {
    const { rows, total } = selectRows(s, 'ports', 'inserts', EMPTY_FILTER, 10);
    expect(total).toBe(5);
    expect(rows.map((r) => r.label)).toEqual(['udp 53', 'tcp 443', 'tcp 80', 'udp 123 (v6)', 'icmp type 8']);
    expect(rows[0]).toMatchObject({ nsName: 'ctop-t-srv', insertsPerSec: 620, dropsPerSec: 10, occupancy: null });
    expect(rows[0]!.share).toBeCloseTo(620 / 980);
  });

  it('5-tuples: the refused tuple is listed with its drops', () => {
    const { rows, total } = selectRows(s, 'tuples', 'drops', EMPTY_FILTER, 3);
    expect(total).toBe(15);
    expect(rows[0]!.label).toBe('udp 198.18.0.66:5353 → 198.18.0.2:53');
    expect(rows[0]).toMatchObject({ insertsPerSec: 0, dropsPerSec: 10 });
    expect(selectRows(s, 'tuples', 'inserts', EMPTY_FILTER, 1).rows[0]!.label).toBe('udp 198.18.0.10:40000 → 198.18.0.2:53');
    expect(selectRows(s, 'tuples', 'inserts', parseFilter('v6'), 1).rows[0]!.label).toBe('udp [2001:2::10]:123 → [2001:2::1]:123');
  });

  it('sources: tuples summed per source address', () => {
    const { rows } = selectRows(s, 'sources', 'inserts', EMPTY_FILTER, 10);
    // 198.18.0.10 sends tuples k = 0, 4, 8: 50 + 46 + 42
    expect(rows[0]).toMatchObject({ label: '198.18.0.10', insertsPerSec: 138 });
    expect(rows.map((r) => r.label)).toContain('198.18.0.66');
    expect(rows.find((r) => r.label === '198.18.0.66')!.dropsPerSec).toBe(10);
  });

  it('namespaces: entries and occupancy against nf_conntrack_max', () => {
    const { rows } = selectRows(s, 'namespaces', 'occupancy', EMPTY_FILTER, 10);
    expect(rows.map((r) => r.label)).toEqual(['ctop-t-srv', 'host']);
    expect(rows[0]).toMatchObject({ entries: 26000 });
    expect(rows[0]!.occupancy).toBeCloseTo(26000 / 65536);
  });

  it('statistics tier: inserts and share are unknown, not zero', () => {
    const st = fixtureWindow(2, { tier: 'stats' });
    expect(selectRows(st, 'ports', 'inserts', EMPTY_FILTER, 10).total).toBe(0);
    expect(selectRows(st, 'namespaces', 'inserts', EMPTY_FILTER, 10).rows[0]).toMatchObject({ insertsPerSec: null, share: null });
  });

  it('sort by name, and the sort keys each view offers', () => {
    expect(selectRows(s, 'ports', 'name', EMPTY_FILTER, 10).rows.map((r) => r.label)).toEqual(['icmp type 8', 'tcp 80', 'tcp 443', 'udp 53', 'udp 123 (v6)']);
    expect(sortKeysFor('namespaces')).toContain('occupancy');
    expect(sortKeysFor('ports')).toContain('occupancy');
    expect(sortKeysFor('tuples')).not.toContain('occupancy');
  });

  it('filters: port, protocol, address, namespace; terms a view lacks are ignored', () => {
    const labels = (view: 'ports' | 'tuples' | 'namespaces', f: string): string[] => selectRows(s, view, 'inserts', parseFilter(f), 50).rows.map((r) => r.label);
    expect(labels('ports', 'tcp')).toEqual(['tcp 443', 'tcp 80']);
    expect(labels('ports', '443')).toEqual(['tcp 443']);
    expect(labels('ports', 'ns:host tcp port:80')).toEqual(['tcp 80']);
    expect(labels('tuples', '198.18.0.66')).toEqual(['udp 198.18.0.66:5353 → 198.18.0.2:53']);
    expect(labels('tuples', 'addr:198.18.1.')).toHaveLength(1);
    expect(labels('namespaces', 'udp')).toEqual(['ctop-t-srv', 'host']);
    expect(labels('namespaces', 'srv')).toEqual(['ctop-t-srv']);
    expect(() => parseFilter('port:70000')).toThrow(/not a port/);
  });

  it('limit cuts the list but total counts every match', () => {
    const r = selectRows(s, 'tuples', 'inserts', EMPTY_FILTER, 4);
    expect(r.rows).toHaveLength(4);
    expect(r.total).toBe(15);
  });
});

describe('topK', () => {
  it('equals sort-then-slice, ties in input order', () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % 50);
    const items = Array.from({ length: 5000 }, (_, i) => ({ i, v: rnd() }));
    const before = (a: { i: number; v: number }, b: { i: number; v: number }): boolean => a.v > b.v || (a.v === b.v && a.i < b.i);
    const expected = [...items].sort((a, b) => b.v - a.v || a.i - b.i).slice(0, 100);
    expect(topK(items, 100, before)).toEqual(expected);
    expect(topK(items, 0, before)).toEqual([]);
    expect(topK(items.slice(0, 3), 10, before)).toHaveLength(3);
  });
});
