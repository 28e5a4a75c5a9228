/**
 * Quitting the live screen at any moment is clean: `ctop top` on a lab whose
 * table holds 200,000 entries, in tmux, with the census budget at its
 * maximum (a census every second, each walking the 200,000 entries in native
 * code for a good part of that second), quit with `q` many times at moments
 * spread over two seconds. Each run must exit 0 and leave nothing: no ctop
 * program or map without an owner, no `ctop-census-PID` namespace (the
 * census thread's first census makes one to find the table).
 *
 * Why: ending the process while the census thread is inside a native call
 * used to abort it (SIGABRT): Node terminates the thread, the addon's N-API
 * calls fail on the way out, and the C++ exception they raise cannot be
 * thrown into a terminating thread. The thread now enters native code only
 * through a state word the screen's close waits on (src/source/occupancy.ts).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLab, ctStat, type Lab } from '../lab/netns.js';
import { ROOT, waitNoCtopPrograms } from '../support/cli.js';
import { Tmux } from '../support/tmux.js';

const ROUNDS = 20;
const ENTRIES = 200_000;
/** quit this long after the screen first shows its frame: spread over two census periods */
const delayMs = (round: number): number => Math.round((round * 2400) / (ROUNDS - 1));

let lab: Lab;
let tmux: Tmux;

const censusNamespaces = (): string[] =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith('ctop-census-'));

describe('quitting the live screen', () => {
  beforeAll(async () => {
    lab = createLab();
    // entries for the census to walk, kept for the whole test (UDP timeout 1 h in the lab only)
    lab.exec(lab.srv, ['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_udp_timeout=3600']);
    lab.exec(lab.srv, [join(ROOT, 'tools', 'bin', 'flood'), 'new', '--dst', lab.srvAddr4, '--port', '9', '--count', String(ENTRIES), '--max-ms', '30000']);
    expect(ctStat(lab.srv).count).toBeGreaterThanOrEqual(ENTRIES);
    tmux = new Tmux();
  }, 60_000);

  afterEach(() => tmux?.killSession());

  afterAll(() => {
    tmux?.destroy();
    lab?.destroy();
  });

  it(`q at ${ROUNDS} moments over two census periods: exit 0 every time, nothing left attached`, async () => {
    const before = censusNamespaces();
    const exits: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      tmux.start(['top', '--netns', lab.srv, '--interval', '200ms', '--census-budget', '50']);
      await tmux.waitFor((s) => /q quit/.test(s), 'the live screen', 20_000);
      await new Promise((r) => setTimeout(r, delayMs(round)));
      tmux.keys('q');
      const s = await tmux.waitFor((x) => /ctop-exit=\d+/.test(x), 'ctop to exit', 20_000);
      exits.push(`${delayMs(round)} ms: ${/ctop-exit=(\d+)/.exec(s)![1]}`);
      tmux.killSession();
      // nothing of this run may outlive it
      expect(await waitNoCtopPrograms(), `after the quit at ${delayMs(round)} ms`).toEqual([]);
      expect(censusNamespaces().filter((n) => !before.includes(n)), `after the quit at ${delayMs(round)} ms`).toEqual([]);
    }
    expect(exits).toEqual(Array.from({ length: ROUNDS }, (_, r) => `${delayMs(r)} ms: 0`));
  }, 300_000);
});

describe('a native call when the process ends', () => {
  it('a thread still in a native call when the process ends does not abort it (past close()\'s wait)', () => {
    // the worker fails a BTF lookup over and over (about 80 ms of native code each, then an
    // error built with N-API); the process ends 50-150 ms after it started
    const addon = join(ROOT, 'build', 'Release', 'ctop.node');
    const script = `
      const { Worker } = require('node:worker_threads');
      const w = new Worker(\`
        const addon = require(\${JSON.stringify(${JSON.stringify(addon)})});
        require('node:worker_threads').parentPort.postMessage('busy');
        for (;;) { try { addon.btfStructSize('no_such_struct_ctop'); } catch {} }
      \`, { eval: true });
      w.unref();
      w.once('message', () => { process.stdout.write('busy'); setTimeout(() => {}, 50 + Math.random() * 100); });`;
    const codes = Array.from({ length: 6 }, () => {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
      return `${r.status ?? r.signal} ${r.stdout} ${r.stderr.trim()}`.trim();
    });
    // 'busy': the thread was in its loop of native calls when the process ended
    expect(codes).toEqual(Array.from({ length: 6 }, () => '0 busy'));
  });
});
