/**
 * `ctop record`, `diff`, `report` and `export-csv` end to end, on recordings
 * made during known traffic in the namespace lab. The report's page is
 * rendered in headless Chromium and checked for what it shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRecording } from '../../src/io/recording.js';
import type { SnapshotDiff } from '../../src/model/diff.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import type { AdviceReport } from '../../src/advise/report.js';
import { createLab, runLoad, startServer, type Lab } from '../lab/netns.js';
import { expectOneLineError, runCli, startCli } from '../support/cli.js';
import { waitNoCtopPrograms } from '../support/cli.js';
import { renderDom, screenshot, visibleText } from '../support/chromium.js';

const WINDOWS = 5;

/** A per-second figure as printed (one decimal) equals count over the
 * recording's own seconds, the sum of its windows' durations (each rounded
 * to the millisecond, and windows a loaded machine stretches): within 0.15/s. */
function expectRate(printed: string, count: number, file: string): void {
  const secs = readRecording(file).snapshots.reduce((a, s) => a + s.durationMs, 0) / 1000;
  expect(Math.abs(Number(printed) - count / secs), `${printed}/s for ${count} in ${secs} s`).toBeLessThanOrEqual(0.15);
}

function insertsOn(file: string, netns: number, port: number): number {
  return readRecording(file)
    .snapshots.flatMap((s) => s.ports)
    .filter((p) => p.netns === netns && p.port === port)
    .reduce((a, p) => a + p.inserts, 0);
}

describe('record, diff, report and export-csv during known traffic', () => {
  let lab: Lab;
  let stop: (() => Promise<unknown>) | undefined;
  let dir: string;
  let srv: number;
  const A = (): string => join(dir, 'a.jsonl');
  const B = (): string => join(dir, 'b.jsonl');

  async function record(file: string, load: () => Promise<void>, extra: string[] = []): Promise<string> {
    const { done } = await startCli(
      ['record', '--netns', lab.srv, '--duration', `${WINDOWS}s`, '--every', '1s', '--top', '0', '-o', file, ...extra],
      /recording \d+ window/,
    );
    await load();
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    return r.stderr;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctop-rec-'));
    lab = createLab();
    srv = lab.netnsInode(lab.srv);
    stop = (await startServer(lab, { udp: [9100, 9101, 9102] })).stop;
  });

  afterAll(async () => {
    await stop?.();
    lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('records one window per --every, each line a snapshot, port totals equal to the flows sent', async () => {
    const stderr = await record(
      A(),
      async () => {
        await runLoad(lab, ['--udp', `${lab.srvAddr4}:9100`, '--flows', '300']);
        await runLoad(lab, ['--udp', `${lab.srvAddr4}:9101`, '--flows', '100']);
      },
      ['--csv', join(dir, 'a.csv'), '--csv-ports', join(dir, 'a-ports.csv')],
    );
    // no TTY: one plain line per window, no bar
    expect(stderr.match(/^ctop: window \d+\/5: fill/gm)).toHaveLength(WINDOWS);
    const rec = readRecording(A());
    expect(rec.header).toMatchObject({ schema: 'ctop.recording/v1', everyMs: 1000 });
    expect(rec.header.memTotalBytes).toBeGreaterThan(0);
    expect(rec.snapshots).toHaveLength(WINDOWS);
    for (const s of rec.snapshots) expect(s.durationMs).toBeGreaterThanOrEqual(900);
    expect(insertsOn(A(), srv, 9100)).toBe(300);
    expect(insertsOn(A(), srv, 9101)).toBe(100);
    expect(rec.snapshots.reduce((a, s) => a + (s.totals.inserts ?? 0), 0)).toBe(400);
    // CSV: a header and one row per window; ports in long format add up too
    const csv = readFileSync(join(dir, 'a.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^window_start,window_end,duration_ms,entries,/);
    expect(csv).toHaveLength(WINDOWS + 1);
    const ports = readFileSync(join(dir, 'a-ports.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const sum = (port: string): number => ports.filter((r) => r[4] === port).reduce((a, r) => a + Number(r[5]), 0);
    expect([sum('9100'), sum('9101')]).toEqual([300, 100]);
    // export-csv from the file gives the same windows CSV
    const again = runCli(['export-csv', A()]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(readFileSync(join(dir, 'a.csv'), 'utf8'));
  });

  it('snapshot, advise, record and serve replay the recording as an unprivileged user, with the counts recorded', async () => {
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'];
    chmodSync(dir, 0o755);
    chmodSync(A(), 0o644);
    const snap = runCli(['snapshot', '--replay', A(), '--json', '--top', '0'], { prefix: nobody });
    expect(snap.code, snap.stderr).toBe(0);
    const one = JSON.parse(snap.stdout) as SnapshotV1;
    const rec = readRecording(A());
    // the recording as one window: port counts and totals summed, the duration the windows' sum
    expect(one.ports.filter((p) => p.netns === srv).map((p) => [p.port, p.inserts])).toEqual([[9100, 300], [9101, 100]]);
    expect(one.totals.inserts).toBe(400);
    expect(one.durationMs).toBe(rec.snapshots.reduce((a, s) => a + s.durationMs, 0));
    expect(one.startedAt).toBe(rec.snapshots[0]!.startedAt);
    const text = runCli(['snapshot', '--replay', A()], { prefix: nobody });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/udp\s+9100\s.*300/);
    const census = runCli(['snapshot', '--replay', A(), '--census'], { prefix: nobody });
    expect(census.code).toBe(2);
    expect(expectOneLineError(census.stderr).message).toMatch(/--census counts this host's table now/);

    // advise --replay: the ports ranked by the recorded inserts; the rules it could not read are said, not guessed
    const adv = runCli(['advise', '--replay', A(), '--json'], { prefix: nobody });
    expect(adv.code, adv.stderr).toBe(0);
    const report = JSON.parse(adv.stdout) as AdviceReport;
    expect(report).toMatchObject({ schema: 'ctop.advice/v1', host: rec.header.host, kernel: rec.header.kernel, durationMs: one.durationMs });
    const ns = report.namespaces.find((n) => n.inode === srv)!;
    expect(ns.notrack.candidates.map((c) => [c.proto, c.port, c.inserts])).toEqual([['udp', 9100, 300], ['udp', 9101, 100]]);
    expect(ns.errors.join(' ')).toMatch(/not recorded: the ruleset/);
    expect(ns.sizing).toBeDefined();
    const advText = runCli(['advise', '--replay', A()], { prefix: nobody });
    expect(advText.code, advText.stderr).toBe(0);
    expect(advText.stdout).toMatch(/udp\/9100/);

    // record --replay: the same windows, each cut to --top rows
    const cut = join(dir, 'cut.jsonl');
    const r = runCli(['record', '--replay', A(), '-o', cut, '--top', '1']);
    expect(r.code, r.stderr).toBe(0);
    const copy = readRecording(cut);
    expect(copy.header).toEqual(rec.header);
    expect(copy.snapshots.map((w) => w.totals)).toEqual(rec.snapshots.map((w) => w.totals));
    expect(copy.snapshots.every((w) => w.ports.length <= 1)).toBe(true);
    expect(insertsOn(cut, srv, 9100)).toBe(300);

    // serve --replay: one window per --every; the counters end at the recorded totals
    const port = 19633 + (process.pid % 1000);
    const { proc, done } = await startCli(['serve', '--replay', A(), '--every', '100ms', '--listen', `127.0.0.1:${port}`], /serving metrics on/);
    try {
      const series = `ctop_inserts_total{netns="${srv}",family="ipv4",proto="udp",port="9100"}`;
      let value = -1;
      for (let i = 0; i < 50 && value !== 300; i++) {
        await new Promise((res) => setTimeout(res, 100));
        const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const m = body.split('\n').find((l) => l.startsWith(`${series} `));
        value = m ? Number(m.split(' ')[1]) : -1;
      }
      expect(value).toBe(300);
    } finally {
      proc.kill('SIGTERM');
      await done;
    }
  });

  it('diff names the port that vanished, the one that grew and the one that appeared', async () => {
    // Fresh table: a new flow that by chance reuses a 5-tuple still in the
    // table is no new entry, and exact counts would come up short.
    lab.exec(lab.srv, ['conntrack', '-F']);
    await record(B(), async () => {
      await runLoad(lab, ['--udp', `${lab.srvAddr4}:9101`, '--flows', '400']);
      await runLoad(lab, ['--udp', `${lab.srvAddr4}:9102`, '--flows', '200']);
    });
    expect(insertsOn(B(), srv, 9101)).toBe(400);
    expect(insertsOn(B(), srv, 9102)).toBe(200);

    const j = runCli(['diff', A(), B(), '--json']);
    expect(j.code, j.stderr).toBe(0);
    const d = JSON.parse(j.stdout) as SnapshotDiff;
    expect(d.schema).toBe('ctop.diff/v1');
    const status = Object.fromEntries(d.ports.filter((p) => p.netns === srv).map((p) => [p.port, p.status]));
    expect(status).toEqual({ 9100: 'vanished', 9101: 'grew', 9102: 'appeared' });
    const p9101 = d.ports.find((p) => p.port === 9101)!;
    expect([p9101.a?.inserts, p9101.b?.inserts]).toEqual([100, 400]);
    expect(d.census).toEqual({ inA: false, inB: false, changed: [] });
    expect(d.table.max.a).toBeGreaterThan(0);

    const t = runCli(['diff', A(), B()]);
    expect(t.code).toBe(0);
    // rates are per second of recorded time: the windows' own durations, which a loaded machine stretches
    const appeared = t.stdout.match(/appeared\s+\d+\s+ipv4\s+udp\s+9102\s+-\s+([\d.]+)\s/);
    const grew = t.stdout.match(/grew\s+\d+\s+ipv4\s+udp\s+9101\s+([\d.]+)\s+([\d.]+)\s/);
    const vanished = t.stdout.match(/vanished\s+\d+\s+ipv4\s+udp\s+9100\s+([\d.]+)\s+-/);
    expect([appeared, grew, vanished].every(Boolean), t.stdout).toBe(true);
    expectRate(appeared![1]!, 200, B());
    expectRate(grew![1]!, 100, A());
    expectRate(grew![2]!, 400, B());
    expectRate(vanished![1]!, 300, A());
    expect(t.stdout).not.toMatch(/census/);
  });

  it('report writes one self-contained page that Chromium renders with the charts, projection and sizing', () => {
    const html = join(dir, 'report.html');
    const r = runCli(['report', A(), '-o', html]);
    expect(r.code, r.stderr).toBe(0);
    const source = readFileSync(html, 'utf8');
    // nothing to fetch: no URLs, no scripts, no external references
    expect(source).not.toMatch(/https?:|<script|<link|src=|@import|url\(/i);

    const dom = renderDom(html);
    const text = visibleText(dom);
    expect(text).toContain('Conntrack capacity report');
    // three charts, the fill and rate lines with one point per window
    expect(dom).toMatch(/<svg[^>]*data-chart="fill"/);
    expect(dom).toMatch(/<svg[^>]*data-chart="rates"/);
    expect(dom).toMatch(/<svg[^>]*data-chart="ports"/);
    expect(dom).toMatch(new RegExp(`data-series="fill" data-points="${WINDOWS}"`));
    expect(dom).toMatch(new RegExp(`data-series="inserts/s" data-points="${WINDOWS}"`));
    // the busiest port first, named in the ports chart and table
    expect(dom).toMatch(new RegExp(`data-series="udp/9100 ipv4 ${lab.srv}"`));
    const row9100 = text.match(new RegExp(`${lab.srv} ipv4 udp 9100 300 ([\\d.]+) 0 0`));
    const row9101 = text.match(new RegExp(`${lab.srv} ipv4 udp 9101 100 ([\\d.]+) 0 0`));
    expect(row9100 && row9101, text).toBeTruthy();
    expectRate(row9100![1]!, 300, A());
    expectRate(row9101![1]!, 100, A());
    expect(text).toMatch(/Time to full: (about .* at this trend|at the limit by this trend|not growing: no projection)/);
    expect(text).not.toContain('Advice');
    // sizing: the recorded limits and the kernel's default formula
    expect(text).toMatch(/nf_conntrack_max \(recorded\) [\d,]+/);
    expect(text).toMatch(/64 GiB 2,097,152/);
    expect(text).toMatch(/recording host \([\d.]+ GiB\)/);
    expect(text).toContain(`${WINDOWS} window(s)`);

    const bytes = screenshot(html, join(dir, 'report.png'));
    expect(bytes).toBeGreaterThan(20_000); // a blank page is a few KB
  });

  it('refuses a truncated recording in one line', () => {
    const cut = join(dir, 'cut.jsonl');
    const text = readFileSync(A(), 'utf8');
    writeFileSync(cut, text.slice(0, text.length - 40));
    for (const cmd of [['report', cut], ['diff', cut, A()], ['export-csv', cut]]) {
      const r = runCli(cmd);
      expect(r.code).toBe(2);
      expect(expectOneLineError(r.stderr).message).toMatch(new RegExp(`${cut}: line 6 is cut short`));
    }
  });
});
