/**
 * NOTRACK from the live screen, as an operator does it: `ctop top --netns SRV`
 * in a tmux pane (100x40) while a lab's UDP service (echoing udp/5353) takes
 * requests from the client namespace. The panel shows advise's candidate with
 * its measured role; `n` lists it with the rules; `a` shows the dry run
 * (nothing loaded), `a` again applies it with the rollback countdown in the
 * header; then the kernel's own view (`conntrack -L` after a flush, and ctop's
 * table's counters) shows the service's traffic untracked while every reply
 * arrives, and the screen shows the inserts gone; `c` confirms, `r` reverts to
 * the byte. A second run lets the countdown expire: rolled back, to the byte.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Tmux } from '../support/tmux.js';
import { createLab, ctCount, runLoad, startServer, type Lab } from '../lab/netns.js';
import { waitNoCtopPrograms } from '../support/cli.js';

let tmux: Tmux;
const start = (args: string[]): void => tmux.start(args, [100, 40]);
const keys = (...k: string[]): void => tmux.keys(...k);
const waitFor = (what: RegExp, timeoutMs = 15_000): Promise<string> => tmux.waitFor((s) => what.test(s), String(what), timeoutMs);

describe('NOTRACK from the live screen (tmux, lab namespace)', () => {
  let lab: Lab;
  let stopServer: (() => Promise<unknown>) | undefined;
  let stateDir: string;
  let stop = false;
  let traffic: Promise<void> | undefined;
  const sent = { flows: 0, replies: 0 };

  beforeAll(async () => {
    tmux = new Tmux();
    lab = createLab();
    stopServer = (await startServer(lab, { udp: [5353] }, { echo: true })).stop;
    stateDir = mkdtempSync(join(tmpdir(), 'ctop-tui-notrack-'));
    // steady, bounded traffic for the whole file: answered UDP requests from cli
    traffic = (async () => {
      for (let i = 0; i < 600 && !stop; i++) {
        const r = await runLoad(lab, ['--udp', `${lab.srvAddr4}:5353`, '--flows', '20', '--wait-reply-ms', '1000']);
        sent.flows += 20;
        sent.replies += r.replies as number;
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
  });

  afterEach(() => tmux?.killSession());

  afterAll(async () => {
    stop = true;
    await traffic;
    tmux?.destroy();
    await stopServer?.();
    lab?.destroy();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  const ruleset = (): string => lab.exec(lab.srv, ['nft', '-s', 'list', 'ruleset']);

  it('n, a (dry run), a (apply, countdown in the header), the kernel shows the service untracked, c confirms, r reverts to the byte', async () => {
    const before = ruleset();
    start(['--netns', lab.srv, '--interval', '500ms', '--state-dir', stateDir, '--confirm-within', '60s']);
    // the panel: advise's candidate with the role the kernel counted
    await waitFor(/1 udp\/5353 server +100\.0%/);
    let s = await (keys('n'), waitFor(/─ NOTRACK ─/));
    expect(s).toMatch(/> 1\. udp\/5353  server  100\.0% of new entries  safe/);
    expect(s).toMatch(/udp\/5353: role server \(100 % of new entries to a local server\)/);
    expect(s).toContain('udp dport 5353 counter notrack comment "ctop udp/5353 prerouting dport"');
    s = await (keys('a'), waitFor(/Dry run: the script below passed `nft -c`/));
    expect(ruleset()).toBe(before);
    s = await (keys('a'), waitFor(/NOTRACK udp\/5353 rolls back in \d+s: c confirm, r revert/));
    expect(s.split('\n')[0]).toMatch(/NOTRACK udp\/5353 rolls back in (5\d|60)s/);
    expect(lab.exec(lab.srv, ['nft', 'list', 'table', 'inet', 'ctop_notrack'])).toMatch(/udp dport 5353 counter packets \d+ bytes \d+ notrack/);
    // the kernel: after a flush, the service's traffic creates no entry in either direction, and every reply arrives
    lab.exec(lab.srv, ['conntrack', '-F']);
    const r = await runLoad(lab, ['--udp', `${lab.srvAddr4}:5353`, '--flows', '100', '--wait-reply-ms', '1000']);
    expect(r.replies).toBe(100);
    expect(ctCount(lab.srv, ['-p', 'udp', '--orig-port-dst', '5353']) + ctCount(lab.srv, ['-p', 'udp', '--orig-port-src', '5353'])).toBe(0);
    // the same screen: the inserts are gone from the panel
    await keys('Escape');
    await waitFor(/no new tcp\/udp flows in this window/);
    s = await (keys('c'), waitFor(/NOTRACK udp\/5353 confirmed/));
    expect(ruleset()).not.toBe(before);
    s = await (keys('r'), waitFor(/NOTRACK reverted/));
    expect(ruleset()).toBe(before);
    await waitFor(/1 udp\/5353 server/);
    keys('q');
    await waitFor(/ctop-exit=0/);
  });

  it('an apply from the screen that is not confirmed rolls back by itself, to the byte', async () => {
    const before = ruleset();
    start(['--netns', lab.srv, '--interval', '500ms', '--state-dir', stateDir, '--confirm-within', '3s']);
    await waitFor(/1 udp\/5353 server/);
    keys('n');
    await waitFor(/─ NOTRACK ─/);
    keys('a');
    await waitFor(/Dry run/);
    keys('a');
    await waitFor(/NOTRACK udp\/5353 rolls back in [1-3]s/);
    expect(ruleset()).not.toBe(before);
    await waitFor(/NOTRACK udp\/5353 rolled back/, 10_000);
    expect(ruleset()).toBe(before);
    keys('q');
    await waitFor(/ctop-exit=0/);
    expect(sent.replies).toBe(sent.flows);
  });
});
