/**
 * Paths no test walked before, on the real kernel in a lab namespace pair:
 * the maps at their --max-* limits (overflow counted, nothing lost), the
 * statistics tier forced, `record` stopped by a signal, and `serve` running
 * beside an interactive ctop on the same namespace (the second takes the next
 * netfilter priority; both count every flow).
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { readRecording } from '../../src/io/recording.js';
import { createLab, ctStat, runLoad, type Lab } from '../lab/netns.js';
import { expectOneLineError, killStrayClis, runCli, startCli, waitNoCtopPrograms } from '../support/cli.js';
import { freePort } from '../support/prometheus.js';

afterEach(killStrayClis);

/** One UDP datagram from cli to each port in [first, first + n): n new entries in srv, one per port. */
function sendToPorts(lab: Lab, first: number, n: number): void {
  const js = `const s=require('dgram').createSocket('udp4');let i=0;const next=()=>{if(i>=${n})return s.close();s.send('x',${first}+i++,'${lab.srvAddr4}',next)};next();`;
  lab.exec(lab.cli, [process.execPath, '-e', js], { timeoutMs: 30_000 });
}

describe('limits, tiers, signals and two ctops', () => {
  let lab: Lab;
  let dir: string;

  beforeAll(() => {
    lab = createLab();
    dir = mkdtempSync(join(tmpdir(), 'ctop-paths-'));
  });

  afterAll(async () => {
    lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('--max-ports and --max-tuples at their floor: 5,000 new ports; every flow is counted either per port or as overflow, exactly', async () => {
    lab.exec(lab.srv, ['conntrack', '-F']);
    const FLOWS = 5000;
    const { done } = await startCli(['snapshot', '--json', '--top', '0', '--duration', '4s', '--netns', lab.srv, '--max-ports', '1024', '--max-tuples', '1024'], /sampling for/);
    sendToPorts(lab, 20000, FLOWS);
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as SnapshotV1;
    expect(ctStat(lab.srv).count).toBe(FLOWS);
    expect(s.overflow.portMapCapacity).toBe(1024);
    expect(s.overflow.tupleMapCapacity).toBe(1024);
    // the maps could not hold them all, and say so
    expect(s.overflow.portMapFull).toBeGreaterThan(0);
    expect(s.overflow.tupleMapFull).toBeGreaterThan(0);
    // nothing is lost: what the maps held plus what overflowed is every flow
    expect(s.ports.reduce((a, p) => a + p.inserts, 0) + s.overflow.portMapFull).toBe(FLOWS);
    expect(s.tuples.reduce((a, t) => a + t.inserts, 0) + s.overflow.tupleMapFull).toBe(FLOWS);
    // the census still sees the ports the map had no room for: listed by what they hold, with 0 inserts counted
    const uncounted = s.ports.filter((p) => p.inserts === 0);
    expect(uncounted).toHaveLength(s.overflow.portMapFull);
    expect(uncounted.every((p) => p.occupancy === 1)).toBe(true);
  });

  it('--max-* just outside their ranges are refused in one line (exit 2); the ceilings load', () => {
    for (const [flag, bad] of [['--max-ports', '1023'], ['--max-ports', '1048577'], ['--max-tuples', '4194305'], ['--max-drop-tuples', '1023']] as const) {
      const r = runCli(['snapshot', '--duration', '500ms', flag, bad]);
      expect(r.code, `${flag} ${bad}`).toBe(2);
      expect(expectOneLineError(r.stderr).message).toMatch(new RegExp(`${flag}: ${bad} is out of range`));
    }
    const top = runCli(['snapshot', '--json', '--duration', '500ms', '--netns', lab.srv, '--max-ports', '1048576', '--max-tuples', '4194304', '--max-drop-tuples', '1048576']);
    expect(top.code, top.stderr).toBe(0);
    const s = JSON.parse(top.stdout) as SnapshotV1;
    expect(s.overflow).toMatchObject({ portMapCapacity: 1048576, tupleMapCapacity: 4194304, dropTupleMapCapacity: 1048576 });
  });

  it('--tier stats: inserts null (rates, namespaces), port rows only from the census, entries as the kernel has them', async () => {
    lab.exec(lab.srv, ['conntrack', '-F']);
    const { done } = await startCli(['snapshot', '--json', '--tier', 'stats', '--duration', '3s', '--netns', lab.srv], /sampling for/);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:7400`, '--flows', '300']);
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as SnapshotV1;
    expect(s.probe.tier).toBe('stats');
    // the statistics tier counts no inserts per port: rows come only from the census (what the table holds)
    expect(s.ports.every((p) => p.inserts === 0)).toBe(true);
    expect(s.ports.find((p) => p.port === 7400)?.occupancy).toBe(300);
    expect(s.rates.insertsPerSec).toBeNull();
    const ns = s.namespaces.find((n) => n.inode === lab.netnsInode(lab.srv))!;
    expect(ns.inserts).toBeNull();
    expect(ns.count).toBe(ctStat(lab.srv).count);
    expect(ns.count).toBe(300);
    const text = runCli(['snapshot', '--tier', 'stats', '--duration', '500ms', '--netns', lab.srv]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/n\/a/);
  });

  it('record stopped by SIGINT (Ctrl-C): exit 0, "stopped early", every window on disk and readable, nothing left loaded', async () => {
    const file = join(dir, 'rec.jsonl');
    const { proc, done } = await startCli(['record', '-o', file, '--every', '1s', '--duration', '1m', '--netns', lab.srv], /recording/);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:7401`, '--flows', '50']);
    await new Promise((res) => setTimeout(res, 2600));
    proc.kill('SIGINT');
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/ctop: wrote \d+ window\(s\) to .* \(stopped early\)/);
    const rec = readRecording(file);
    expect(rec.snapshots.length).toBeGreaterThanOrEqual(2);
    expect(rec.snapshots.reduce((a, w) => a + (w.ports.find((p) => p.port === 7401)?.inserts ?? 0), 0)).toBe(50);
    expect(readFileSync(file, 'utf8').endsWith('\n')).toBe(true);
    const csv = runCli(['export-csv', file]);
    expect(csv.code, csv.stderr).toBe(0);
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('serve and an interactive snapshot on the same namespace at once: both count every flow', async () => {
    const port = await freePort();
    const serve = await startCli(['serve', '--netns', lab.srv, '--listen', `127.0.0.1:${port}`, '--every', '1s'], /serving metrics on/);
    try {
      const { done } = await startCli(['snapshot', '--json', '--top', '0', '--duration', '3s', '--netns', lab.srv], /sampling for/);
      await runLoad(lab, ['--udp', `${lab.srvAddr4}:7402`, '--flows', '200']);
      const r = await done;
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as SnapshotV1;
      expect(s.ports.find((p) => p.port === 7402)?.inserts).toBe(200);
      await new Promise((res) => setTimeout(res, 1500));
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const line = metrics.split('\n').find((l) => l.startsWith('ctop_inserts_total{') && l.includes('port="7402"'));
      expect(line, metrics.slice(0, 400)).toMatch(/ 200$/);
    } finally {
      serve.proc.kill('SIGTERM');
      await serve.done;
    }
  });
});
