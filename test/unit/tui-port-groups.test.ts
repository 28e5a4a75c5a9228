import { describe, expect, it } from 'vitest';
import type { PortRow } from '../../src/model/snapshot.js';
import type { RoleCounts } from '../../src/model/roles.js';
import { rangeGroups, roleGroups } from '../../src/tui/portGroups.js';
import { selectRows } from '../../src/tui/talkers.js';
import { EMPTY_FILTER } from '../../src/tui/filter.js';
import { fixtureWindow } from '../support/tuiFixtures.js';

const NS = 4026532001;
const roles = (r: Partial<RoleCounts>): RoleCounts => ({ server: 0, client: 0, local: 0, forward: 0, ...r });

function udp(port: number, inserts: number, o: { role?: keyof RoleCounts; occupancy?: number; drops?: number; family?: 'ipv4' | 'ipv6'; proto?: number } = {}): PortRow {
  const protoNum = o.proto ?? 17;
  return {
    netns: NS,
    family: o.family ?? 'ipv4',
    proto: protoNum === 6 ? 'tcp' : protoNum === 1 ? 'icmp' : 'udp',
    protoNum,
    port,
    inserts,
    drops: o.drops ?? 0,
    roles: roles({ [o.role ?? 'server']: inserts }),
    ...(o.occupancy === undefined ? {} : { occupancy: o.occupancy }),
  };
}

describe('port ranges for the live screen', () => {
  it('100 adjacent ports of one role are one range; its counts are its ports\' sums', () => {
    const rows = [...Array.from({ length: 100 }, (_, i) => udp(60000 + i, 2, { occupancy: 30 })), udp(53, 500, { occupancy: 900 })];
    const g = rangeGroups(rows).sort((a, b) => a.port - b.port);
    expect(g.map((x) => [x.port, x.portEnd, x.ports, x.role, x.inserts, x.occupancy])).toEqual([
      [53, 53, 1, 'server', 500, 900],
      [60000, 60099, 100, 'server', 200, 3000],
    ]);
  });

  it('fewer than 8 ports, gaps over 3, another role or another protocol: not one range', () => {
    const short = Array.from({ length: 7 }, (_, i) => udp(1000 + i, 1));
    const gappy = Array.from({ length: 8 }, (_, i) => udp(2000 + 5 * i, 1));
    const mixed = Array.from({ length: 8 }, (_, i) => udp(3000 + i, 1, { role: i < 4 ? 'server' : 'client' }));
    const protos = Array.from({ length: 8 }, (_, i) => udp(4000 + i, 1, { proto: i % 2 ? 6 : 17 }));
    const g = rangeGroups([...short, ...gappy, ...mixed, ...protos]);
    expect(g.every((x) => x.ports === 1)).toBe(true);
    expect(g).toHaveLength(7 + 8 + 8 + 8);
  });

  it('ports that only hold entries (no new ones in the window) join the run they sit in, and gaps of 3 do not break it', () => {
    const rows = Array.from({ length: 10 }, (_, i) => (i % 2 ? udp(20000 + 4 * i, 0, { occupancy: 100 }) : udp(20000 + 4 * i, 5, { occupancy: 10 })));
    const [g, ...rest] = rangeGroups(rows);
    expect(rest).toEqual([]);
    expect([g!.port, g!.portEnd, g!.ports, g!.role, g!.inserts, g!.occupancy]).toEqual([20000, 20036, 10, 'server', 25, 550]);
  });

  it('both families of a port are one port; a range of held-only ports has no role', () => {
    const rows = Array.from({ length: 8 }, (_, i) => [udp(5000 + i, 0, { occupancy: 1 }), udp(5000 + i, 0, { occupancy: 2, family: 'ipv6' })]).flat();
    const [g] = rangeGroups(rows);
    expect([g!.ports, g!.families, g!.role, g!.occupancy]).toEqual([8, ['ipv4', 'ipv6'], '', 24]);
  });

  it('ICMP types never form ranges', () => {
    const g = rangeGroups(Array.from({ length: 10 }, (_, i) => udp(i, 1, { proto: 1 })));
    expect(g.every((x) => x.ports === 1)).toBe(true);
  });
});

describe('roles for the live screen', () => {
  it('each port counts once, in the group of its roles as rules cover them; held-only and refused-only ports apart', () => {
    const rows = [
      udp(53, 100, { occupancy: 40 }),
      udp(123, 50, { role: 'client', occupancy: 5 }),
      { ...udp(443, 10, { occupancy: 7 }), roles: roles({ server: 8, local: 2 }) },
      udp(5201, 0, { occupancy: 3000 }),
      udp(9999, 0, { drops: 4 }),
      udp(7777, 0), // nothing in the window: not listed
    ];
    const g = roleGroups(rows).map((x) => [x.role, x.ports, x.inserts, x.drops, x.occupancy]);
    expect(g.sort()).toEqual(
      [
        ['', 2, 0, 4, 3000],
        ['client', 1, 50, 0, 5],
        ['server', 1, 100, 0, 40],
        ['server+local', 1, 10, 0, 7],
      ].sort(),
    );
  });
});

describe('the Ranges and Roles views', () => {
  it('list groups with their rates, occupancy and role in the label', () => {
    const s = fixtureWindow(2);
    for (const view of ['ranges', 'roles'] as const) {
      const sel = selectRows(s, view, 'inserts', EMPTY_FILTER, 50);
      expect(sel.total).toBeGreaterThan(0);
      const portsTotal = s.ports.reduce((n, p) => n + p.inserts, 0);
      const groupsTotal = sel.rows.reduce((n, r) => n + (r.insertsPerSec ?? 0), 0) * (s.durationMs / 1000);
      // every port in exactly one group: the inserts add up to the ports'
      expect(Math.round(groupsTotal)).toBe(portsTotal);
    }
  });
});
