/** Source samples for unit tests of the window model. */
import { ZERO_STATS, type PortCount, type Sample } from '../../src/model/sample.js';
import { zeroRoleCounts } from '../../src/model/roles.js';

/** A cumulative sample with only what each test sets. */
export function sample(over: Partial<Sample> = {}): Sample {
  return {
    monoMs: 0,
    wallTime: '2026-11-25T10:00:00.000Z',
    probe: { tier: 'netfilter', programs: [], refused: [] },
    ports: [],
    tuples: [],
    totals: { inserts: 0, drops: 0, portOverflow: 0, tupleOverflow: 0, dropUnparsed: 0, netnsOverflow: 0, otherNfDrops: 0, dropTupleOverflow: 0 },
    namespaces: [{ inode: 1, name: 'host', count: 0, stats: { ...ZERO_STATS }, links: 4 }],
    max: 1000,
    buckets: 256,
    capacity: { ports: 8192, tuples: 16384, dropTuples: 4096 },
    tupleEntries: 0,
    dropTupleEntries: 0,
    netnsErrors: [],
    ...over,
  };
}

/** A cumulative port row; its inserts are all `server` entries unless `roles` says otherwise. */
export function portCount(over: Omit<PortCount, 'roles'> & Partial<Pick<PortCount, 'roles'>>): PortCount {
  return { roles: { ...zeroRoleCounts(), server: over.inserts }, ...over };
}
