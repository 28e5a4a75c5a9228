/** Keys, state, layout, panel text and the replay source of the live screen, without a terminal. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Controller, type Frame } from '../../src/tui/controller.js';
import { KEY_TABLE, actionFor, helpLines, hintLine, type Action } from '../../src/tui/keys.js';
import { layout } from '../../src/tui/layout.js';
import { ratesLines, talkersLines, pageStart } from '../../src/tui/panels.js';
import { ReplayWindows, loadRecordingPrefix } from '../../src/source/replay.js';
import { initialState, reduce, reduceInput } from '../../src/tui/state.js';
import { sparkline } from '../../src/tui/text.js';
import { emptyModel, updateModel } from '../../src/tui/model.js';
import { VIEWS, selectRows } from '../../src/tui/talkers.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import type { WindowSource } from '../../src/model/snapshot.js';
import { fixtureWindow, recordingText } from '../support/tuiFixtures.js';

const plain = (tagged: string): string => tagged.replace(/\{\/?[a-z-]+\}/g, '').replace(/\{open\}/g, '{').replace(/\{close\}/g, '}');

function listSource(windows: SnapshotV1[]): WindowSource {
  let i = 0;
  return { label: 'test', next: () => windows[i++], close: () => {} };
}

function allLines(f: Frame): string[] {
  return [f.header, f.gauge, f.footer, ...[f.rates, f.buckets, f.talkers, f.drops, f.notrack, f.overlay].flatMap((p) => p?.lines ?? [])];
}

describe('key table', () => {
  it('one table drives bindings and help: every binding is listed, no key bound twice', () => {
    const keys = KEY_TABLE.flatMap((b) => b.keys);
    expect(new Set(keys).size).toBe(keys.length);
    for (const b of KEY_TABLE) for (const k of b.keys) expect(actionFor(k)).toBe(b.action);
    const help = helpLines();
    for (const b of KEY_TABLE) expect(help.some((l) => l.includes(b.shown) && l.includes(b.help))).toBe(true);
    for (const k of ['q', '?', 's', '/', 'p', 'tab', 'up', 'down', 'j', 'k', 'enter']) expect(actionFor(k)).toBeDefined();
    expect(help.every((l) => l.length <= 76)).toBe(true);
    expect(hintLine().length).toBeLessThanOrEqual(79);
  });
});

describe('state', () => {
  const ctx = { rowCount: 25, pageRows: 10 };
  const run = (...actions: Action[]) => actions.reduce((s, a) => reduce(s, a, ctx), initialState());

  it('views cycle both ways and reset the selection', () => {
    expect(run('nextView').viewIndex).toBe(1);
    expect(run('prevView').viewIndex).toBe(VIEWS.length - 1);
    expect(run('down', 'nextView').selected).toBe(0);
  });

  it('moves stay within the rows', () => {
    expect(run('up').selected).toBe(0);
    expect(run('down', 'down').selected).toBe(2);
    expect(run('pageDown', 'pageDown', 'pageDown').selected).toBe(24);
    expect(run('last').selected).toBe(24);
    expect(run('last', 'first').selected).toBe(0);
  });

  it('sort cycles the current view’s keys', () => {
    expect(run('sort').sort.ports).toBe('inserts10');
    expect(run('sort', 'sort').sort.ports).toBe('inserts60');
    expect(run('sort', 'sort', 'sort').sort.ports).toBe('drops');
    expect(run('sort', 'sort', 'sort', 'sort').sort.ports).toBe('occupancy');
    expect(run('sort', 'sort', 'sort', 'sort', 'sort', 'sort').sort.ports).toBe('inserts');
    expect(run('nextView', 'nextView', 'nextView', 'sort', 'sort', 'sort', 'sort').sort.namespaces).toBe('occupancy');
    // ranges keep spans (their ports' summed); roles do not
    expect(run('prevView', 'prevView', 'sort').sort.ranges).toBe('inserts10');
    expect(run('prevView', 'sort', 'sort').sort.roles).toBe('occupancy');
    // 5-tuples keep no spans and hold one entry each
    expect(run('nextView', 'sort', 'sort').sort.tuples).toBe('name');
  });

  it('pause, help, details, notrack, close, quit', () => {
    expect(run('pause').paused).toBe(true);
    expect(run('pause', 'pause').paused).toBe(false);
    expect(run('help').overlay).toBe('help');
    expect(run('help', 'help').overlay).toBe('none');
    expect(run('details').overlay).toBe('details');
    expect(reduce(initialState(), 'details', { rowCount: 0, pageRows: 10 }).overlay).toBe('none');
    expect(run('notrack', 'close').overlay).toBe('none');
    expect(run('quit').quit).toBe(true);
  });

  it('typing a filter: characters, backspace, Enter applies, a bad one is refused, Esc abandons', () => {
    let s = run('filter');
    expect(s.input).toBe('');
    for (const ch of 'udpx') s = reduceInput(s, ch, ch);
    s = reduceInput(s, undefined, 'backspace');
    s = reduceInput(s, '\r', 'enter');
    expect(s.input).toBeNull();
    expect(s.filter.text).toBe('udp');
    s = reduce(s, 'filter', ctx);
    expect(s.input).toBe('udp');
    s = reduceInput(s, undefined, 'C-u');
    for (const ch of 'port:99999') s = reduceInput(s, ch, ch);
    s = reduceInput(s, '\r', 'enter');
    expect(s.inputError).toMatch(/not a port/);
    s = reduceInput(s, undefined, 'escape');
    expect(s.input).toBeNull();
    expect(s.filter.text).toBe('udp');
    expect(reduce(s, 'close', ctx).filter.text).toBe('');
  });
});

describe('layout', () => {
  it('80x24 has every panel, rows add up, nothing overlaps', () => {
    const l = layout(80, 24);
    expect(l.tooSmall).toBe(false);
    expect(l.buckets && l.drops && l.notrack).toBeTruthy();
    expect(l.header.height + l.gauge.height + l.rates.height + l.talkers.height + l.drops!.height + l.footer.height).toBe(24);
    expect(l.rates.width + l.buckets!.width).toBe(80);
  });

  it('small terminals drop panels, then give up politely', () => {
    expect(layout(80, 16).drops).toBeNull();
    expect(layout(50, 24).buckets).toBeNull();
    expect(layout(30, 10).tooSmall).toBe(true);
  });
});

describe('panels', () => {
  it('sparklines scale to the largest value; zero is blank; null is a dot', () => {
    expect(sparkline([0, 1, 2, 4, 8], 5)).toBe(' ▁▂▄█');
    expect(sparkline([null, 3], 4)).toBe('  ·█');
  });

  it('every line of a frame fits its width, at several sizes, in every view', () => {
    const m = [0, 1, 2, 3, 4].reduce((acc, i) => updateModel(acc, fixtureWindow(i)), emptyModel());
    for (const [cols, rows] of [[80, 24], [120, 40], [60, 20], [200, 60]] as const) {
      for (let v = 0; v < VIEWS.length; v++) {
        const c = new Controller(listSource([]), 1000, { color: true });
        c.model = m;
        c.state = { ...c.state, viewIndex: v };
        const f = c.frame(cols, rows, { label: 'test' });
        for (const line of [f.header, f.gauge, f.footer]) expect(plain(line).length).toBeLessThanOrEqual(cols);
        // the talkers title (its tabs, the sort, the census's age) fits in its box's top border
        expect(plain(f.talkers.label ?? '').length, f.talkers.label).toBeLessThanOrEqual(f.layout.talkers.width - 2);
        for (const [p, r] of [[f.rates, f.layout.rates], [f.talkers, f.layout.talkers], [f.buckets, f.layout.buckets], [f.drops, f.layout.drops], [f.notrack, f.layout.notrack]] as const) {
          if (!p || !r) continue;
          expect(p.lines.length).toBeLessThanOrEqual(r.height - 2);
          for (const line of p.lines) expect(plain(line).length, line).toBeLessThanOrEqual(r.width - 2);
        }
      }
    }
  });

  it('the talkers table marks the sort column and pages around the selection', () => {
    const s = fixtureWindow(2);
    const st = { ...initialState(), viewIndex: 1, selected: 7 };
    const sel = selectRows(s, 'tuples', 'inserts', st.filter, 20);
    const lines = talkersLines(sel, st, 78, 7, { color: false }).map(plain);
    expect(lines[0]).toMatch(/ins\/s▼/);
    expect(pageStart(7, 6)).toBe(6);
    expect(lines[1]).toMatch(/198\.18\.0\.12:40006/); // row 6 starts the second page
    expect(lines).toHaveLength(7);
  });

  it('rates: inserts are n/a in the statistics tier', () => {
    const m = updateModel(emptyModel(), fixtureWindow(0, { tier: 'stats' }));
    expect(plain(ratesLines(m, 38, 4, { color: false })[0]!)).toMatch(/n\/a$/);
  });

  it('NO_COLOR: no colour tags anywhere, attributes only', () => {
    const c = new Controller(listSource([0, 1, 2, 3, 4].map((i) => fixtureWindow(i))), 1000, { color: false });
    for (let i = 0; i < 5; i++) c.tick();
    const lines = allLines(c.frame(80, 24, { label: 'test' }));
    expect(lines.join('\n')).not.toMatch(/-fg\}|-bg\}/);
    const coloured = new Controller(listSource([0, 1, 2, 3, 4].map((i) => fixtureWindow(i))), 1000, { color: true });
    for (let i = 0; i < 5; i++) coloured.tick();
    expect(allLines(coloured.frame(80, 24, { label: 'test' })).join('\n')).toMatch(/\{red-fg\}/);
  });
});

describe('controller', () => {
  it('one tick reads the source once; paused ticks read nothing', () => {
    let reads = 0;
    const src: WindowSource = { label: 'x', next: () => (reads++, fixtureWindow(reads)), close: () => {} };
    const c = new Controller(src, 500, { color: false });
    expect(c.tick()).toBe(500);
    expect(reads).toBe(1);
    c.key('p', 'p');
    c.tick();
    expect(reads).toBe(1);
    expect(c.frame(80, 24, { label: 'x' }).header).toMatch(/PAUSED/);
  });

  it('a failing source gives a full-screen message and a retry in a second', () => {
    let fail = true;
    const src: WindowSource = {
      label: 'x',
      next: () => {
        if (fail) throw new Error('netlink: EBUSY');
        return fixtureWindow(0);
      },
      close: () => {},
    };
    const c = new Controller(src, 5000, { color: false });
    expect(c.tick()).toBe(1000);
    expect(c.tick()).toBe(1000);
    const f = c.frame(80, 24, { label: 'x' });
    expect(f.fullScreen!.map(plain).join('\n')).toMatch(/data source failed[\s\S]*EBUSY[\s\S]*attempt 2/);
    fail = false;
    expect(c.tick()).toBe(5000);
    expect(c.frame(80, 24, { label: 'x' }).fullScreen).toBeNull();
  });
});

describe('replay source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctop-tui-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('plays every window once, then ends on the last', () => {
    const f = join(dir, 'ok.jsonl');
    writeFileSync(f, recordingText([0, 1, 2].map((i) => fixtureWindow(i))));
    const r = new ReplayWindows(f);
    expect([r.next(), r.next(), r.next()].map((w) => w?.startedAt)).toEqual([0, 1, 2].map((i) => fixtureWindow(i).startedAt));
    expect(r.next()).toBeUndefined();
    expect(r.position()).toEqual({ index: 3, total: 3, ended: true });
  });

  it('a corrupt later line: the windows before it play, then the source fails there, and recovers once the file is fixed', () => {
    const f = join(dir, 'bad.jsonl');
    const good = [0, 1].map((i) => fixtureWindow(i));
    writeFileSync(f, recordingText(good, '{"schema": "ctop.snap\n'));
    const loaded = loadRecordingPrefix(f);
    expect(loaded.windows).toHaveLength(2);
    expect(loaded.error?.message).toMatch(/line 4: cut short or corrupt/);
    const r = new ReplayWindows(f);
    r.next();
    r.next();
    expect(() => r.next()).toThrow(/line 4/);
    writeFileSync(f, recordingText([...good, fixtureWindow(2)]));
    expect(r.next()?.startedAt).toBe(fixtureWindow(2).startedAt);
  });

  it('a bad header or a missing file fails at once', () => {
    const f = join(dir, 'hdr.jsonl');
    writeFileSync(f, '{"schema":"nope"}\n');
    expect(() => new ReplayWindows(f)).toThrow(/line 1 .*schema/);
    expect(() => new ReplayWindows(join(dir, 'missing'))).toThrow(/no such file/);
  });
});
