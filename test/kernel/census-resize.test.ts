/**
 * A census during a table resize: 100,000 unreplied UDP entries in a lab
 * namespace, `ctop census --json` started, and the global hash size
 * (/sys/module/nf_conntrack/parameters/hashsize, which nf_conntrack_buckets
 * reflects) changed while the walk runs. A resize replaces the table, so the
 * walk must start over on the new one: the census still equals the lab's
 * composition exactly, its histogram covers the NEW bucket count and two chain
 * nodes per entry, its JSON says it started over (`resizeRestarts`) and which
 * bucket count it walked, and nothing is left behind. The hash size is global:
 * it is put back afterwards, also on failure.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CensusReport } from '../../src/model/census.js';
import { createLab, withConntrackMax, type Lab } from '../lab/netns.js';
import { CLI, ROOT, waitNoCtopPrograms } from '../support/cli.js';

const ENTRIES = 100_000;
const PORT = 7610;
const HASHSIZE = '/sys/module/nf_conntrack/parameters/hashsize';
/** After the census starts finding the table (its private namespace appears; the census read
 * the bucket count just before, and walks right after deleting it), wait this long before
 * starting the resize. */
const DELAYS_MS = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 120];

function buckets(): number {
  return Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_buckets', 'utf8').trim());
}

function ctopNamespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('ctop-census-'));
}

/** The census's private namespace exists: it is finding the table from a datagram sent there
 * (CTOP_TEST_LOCATE=capture; src/source/hashWalk.ts pokePrivate), which takes about 100 ms,
 * long enough to be seen from here on a busy machine; it walks right after deleting it. */
function findingTable(pid: number): boolean {
  return existsSync(`/run/netns/ctop-census-${pid}`);
}

// poll as often as the event loop allows
const tick = () => new Promise((r) => setImmediate(r));

interface Run {
  report: CensusReport;
  from: number;
  to: number;
  /** ms from the census starting to find the table: it found it (the walk begins), the resize began and ended */
  walkBeganMs: number;
  resizeBeganMs: number;
  resizeEndedMs: number;
}

/**
 * Start a census; delayMs after it starts finding the table, resize the hash to `to` from
 * another process (so this one keeps watching when the census found it and its walk begins).
 */
async function censusDuringResize(lab: Lab, to: number, delayMs: number): Promise<Run> {
  const from = buckets();
  // the traffic way of finding the table: its private namespace is a marker this test can see
  const proc = spawn(process.execPath, [CLI, 'census', '--json', '--top', '0', '--rate-window', '0s', '--netns', lab.srv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CTOP_TEST_LOCATE: 'capture' },
  });
  let stdout = '';
  let stderr = '';
  let exited = false;
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((res) => proc.on('close', (c) => ((exited = true), res(c))));
  const deadline = Date.now() + 30_000;
  while (!exited && !findingTable(proc.pid!) && Date.now() < deadline) await tick();
  const t0 = performance.now();
  if (exited || Date.now() >= deadline) throw new Error(`the census was never seen finding the table (exited: ${exited}): ${stderr}`);
  while (performance.now() - t0 < delayMs) await tick();
  const resizeBeganMs = performance.now() - t0;
  const writer = spawn('sh', ['-c', `printf %s ${to} > ${HASHSIZE}`], { stdio: 'ignore' });
  let resizeEndedMs = -1;
  const written = new Promise<number | null>((res) => writer.on('close', (c) => ((resizeEndedMs = performance.now() - t0), res(c))));
  while (findingTable(proc.pid!) && !exited) await tick();
  const walkBeganMs = performance.now() - t0;
  expect(await written).toBe(0);
  const code = await done;
  if (code !== 0) throw new Error(`ctop census exited ${code}: ${stderr}`);
  return { report: JSON.parse(stdout) as CensusReport, from, to, walkBeganMs, resizeBeganMs, resizeEndedMs };
}

describe('census during a hash resize', () => {
  let lab: Lab;
  let restoreMax: (() => Promise<void>) | undefined;
  const oldSize = Number(readFileSync(HASHSIZE, 'utf8').trim());
  const restoreSize = () => {
    if (Number(readFileSync(HASHSIZE, 'utf8').trim()) !== oldSize) writeFileSync(HASHSIZE, String(oldSize));
  };

  beforeAll(async () => {
    process.once('exit', restoreSize); // the size is global: put it back even if this process dies
    lab = createLab();
    // the flood's entries live an hour in the lab, so none expires during the test
    lab.exec(lab.srv, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=3600']);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // room for the entries (the limit is global; put back afterwards)
    const max = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').trim());
    const running = withConntrackMax(Math.max(max, 2 * ENTRIES), () => held);
    restoreMax = async () => {
      release();
      await running;
    };
    const r = JSON.parse(lab.exec(lab.srv, [join(ROOT, 'tools', 'bin', 'flood'), 'new', '--dst', lab.srvAddr4, '--port', String(PORT), '--count', String(ENTRIES), '--max-ms', '30000'], { timeoutMs: 60_000 })) as { sent: number; errors: number };
    expect(r).toMatchObject({ sent: ENTRIES, errors: 0 });
    expect(Number(lab.exec(lab.srv, ['conntrack', '-C']).trim())).toBe(ENTRIES);
  }, 120_000);

  afterAll(async () => {
    try {
      restoreSize();
      process.removeListener('exit', restoreSize);
    } finally {
      lab?.destroy();
      await restoreMax?.();
    }
  });

  it('starts the walk over on the new table and still counts every entry exactly', async () => {
    const tried: string[] = [];
    let landed: Run | undefined;
    for (const delayMs of DELAYS_MS) {
      const run = await censusDuringResize(lab, buckets() === oldSize ? oldSize / 2 : oldSize, delayMs);
      const r = run.report;
      const b = r.buckets;
      tried.push(
        `resize ${run.from}->${run.to} at ${run.resizeBeganMs.toFixed(0)}-${run.resizeEndedMs.toFixed(0)} ms, walk began ${run.walkBeganMs.toFixed(0)} ms` +
          ` (walk ${b.phasesMs?.walkMs.toFixed(0)} ms): restarts ${b.resizeRestarts}, walked ${b.buckets}`,
      );
      const ctx = tried.join('\n');
      // wherever the resize fell, the census is exact, of one whole table: the new one if it restarted
      expect(buckets()).toBe(run.to);
      expect(r.methods.chains, ctx).toBe('bpf-hash-walk');
      expect(r.methods.occupancy, ctx).toBe('bpf-hash-walk');
      expect([run.from, run.to], ctx).toContain(b.buckets);
      if (b.resizeRestarts === 1) expect(b.buckets, ctx).toBe(run.to);
      expect(b.histogram.reduce((a, h) => a + h.buckets, 0)).toBe(b.buckets);
      expect(b.inconsistentBuckets, ctx).toBe(0);
      const nodes = b.histogram.reduce((a, h) => a + h.k * h.buckets, 0);
      expect(nodes).toBe(b.nodes);
      if (r.hashEntries.before === r.hashEntries.after) expect(nodes, ctx).toBe(2 * r.hashEntries.after);
      expect(nodes, ctx).toBeGreaterThanOrEqual(2 * ENTRIES);
      expect(r.namespaces.map((n) => n.name)).toEqual([lab.srv]);
      const groups = r.namespaces[0]!.groups.map((g) => ({ family: g.family, proto: g.proto, port: g.port, entries: g.entries, assured: g.assured, unreplied: g.unreplied }));
      expect(groups, ctx).toEqual([{ family: 'ipv4', proto: 'udp', port: PORT, entries: ENTRIES, assured: 0, unreplied: ENTRIES }]);
      expect(await waitNoCtopPrograms()).toEqual([]);
      expect(ctopNamespaces()).toEqual([]);
      // landed during the walk: the new table went in after the walk of the old one began
      if (b.resizeRestarts === 1 && run.resizeEndedMs > run.walkBeganMs) {
        landed = run;
        break;
      }
    }
    // a census that always finished before the resize (or started after it) proves nothing: fail
    expect(landed, `no resize landed during a walk:\n${tried.join('\n')}`).toBeDefined();
    console.log(`census-resize:\n${tried.join('\n')}`);
  }, 300_000);
});
