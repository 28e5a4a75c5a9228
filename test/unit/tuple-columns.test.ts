/** The columnar window: the live screen's views give the same rows whether a window holds its tuples as objects or as records read in place. */
import { describe, expect, it } from 'vitest';
import { decodeTupleColumns, decodeTuples } from '../../src/native/decode.js';
import { buildSnapshot, type SnapshotV1 } from '../../src/model/snapshot.js';
import { selectRows } from '../../src/tui/talkers.js';
import { EMPTY_FILTER, parseFilter } from '../../src/tui/filter.js';
import { dropsLines } from '../../src/tui/panels.js';
import { fixtureWindow } from '../support/tuiFixtures.js';
import { sample } from '../support/sample.js';
import { tupleRecords } from '../support/tupleRecords.js';

const rows = fixtureWindow(3).tuples;
const records = tupleRecords(rows);

function windows(): { objects: SnapshotV1; columns: SnapshotV1 } {
  const a = sample({ monoMs: 0 });
  const b = sample({ monoMs: 1000 });
  const objects = buildSnapshot(a, b, { host: 'h', kernel: 'k', top: 0, unsorted: true, tupleGrowth: decodeTuples(records) });
  const columns = buildSnapshot(a, b, { host: 'h', kernel: 'k', top: 0, unsorted: true, tupleColumns: decodeTupleColumns(records) });
  return { objects, columns };
}

const plain = (sel: ReturnType<typeof selectRows>): unknown => ({ total: sel.total, rows: sel.rows.map(({ details, ...r }) => ({ ...r, details: details() })) });

describe('tuple columns', () => {
  it('read every field as the object decoder does, IPv6 included', () => {
    const c = decodeTupleColumns(records);
    expect(c.length).toBe(rows.length);
    expect(Array.from({ length: c.length }, (_, i) => c.row(i))).toEqual(decodeTuples(records));
    expect(c.row(rows.length - 2)).toMatchObject({ family: 'ipv6', src: '2001:2::10' });
  });

  it('the 5-tuples and sources views, every sort and a filter, and the refused panel: the same rows either way', () => {
    const { objects, columns } = windows();
    expect(columns.tuples).toEqual([]);
    expect(JSON.parse(JSON.stringify(columns))).not.toHaveProperty('tupleColumns');
    for (const sort of ['inserts', 'drops', 'name'] as const) {
      expect(plain(selectRows(columns, 'tuples', sort, EMPTY_FILTER, 5))).toEqual(plain(selectRows(objects, 'tuples', sort, EMPTY_FILTER, 5)));
    }
    for (const f of ['198.18.0.1', 'v6', 'port:53 udp']) {
      expect(plain(selectRows(columns, 'tuples', 'inserts', parseFilter(f), 50))).toEqual(plain(selectRows(objects, 'tuples', 'inserts', parseFilter(f), 50)));
    }
    expect(plain(selectRows(columns, 'sources', 'inserts', EMPTY_FILTER, 50))).toEqual(plain(selectRows(objects, 'sources', 'inserts', EMPTY_FILTER, 50)));
    expect(dropsLines(columns, 40, 6, { color: false })).toEqual(dropsLines(objects, 40, 6, { color: false }));
  });
});
