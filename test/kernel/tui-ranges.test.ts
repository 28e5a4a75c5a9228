/**
 * The Ranges and Roles views against the real kernel: a lab's server takes
 * UDP flows spread over 20 adjacent ports (udp/61000-61019) from the client
 * namespace; `ctop top --netns SRV` in tmux (not a replay) shows them as one
 * range row and one role row, with the entries they hold equal to
 * `conntrack -L`'s count, and with the role the kernel saw (server) once new
 * flows arrive while the screen is open.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLab, ctCount, runLoad, startServer, type Lab } from '../lab/netns.js';
import { waitNoCtopPrograms } from '../support/cli.js';
import { Tmux } from '../support/tmux.js';

const FIRST = 61000;
const PORTS = 20;
const BEFORE = 800; // flows sent before the screen opens: 40 a port

let lab: Lab;
let t: Tmux;
let server: { stop(): Promise<unknown> } | undefined;

/** Entries the kernel lists in the lab's server namespace: only the range's flows are there. */
const listed = (): number => ctCount(lab.srv, ['-p', 'udp']);
const n = (x: number): string => x.toLocaleString('en-US');

beforeAll(async () => {
  lab = createLab();
  // entries stay for the whole test (UDP timeout 1 h in the lab only)
  lab.exec(lab.srv, ['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_udp_timeout=3600']);
  server = await startServer(lab, { udp: Array.from({ length: PORTS }, (_, i) => FIRST + i) }, { maxMs: 110_000 });
  await runLoad(lab, ['--udp', `${lab.srvAddr4}:${FIRST}`, '--flows', String(BEFORE), '--port-span', String(PORTS), '--max-ms', '20000']);
  t = new Tmux();
}, 60_000);

afterEach(() => t?.killSession());

afterAll(async () => {
  t?.destroy();
  await server?.stop();
  lab?.destroy();
  expect(await waitNoCtopPrograms()).toEqual([]);
});

describe('Ranges and Roles, live (netfilter tier, background census)', () => {
  it(`${PORTS} adjacent ports are one range and one role row; their occ equals conntrack -L's count; new flows show the role`, async () => {
    // the kernel's count is the truth: a new flow that reuses a source port of an earlier one joins its entry
    const before = listed();
    expect(before).toBeGreaterThan(BEFORE * 0.9);
    t.start(['top', '--netns', lab.srv, '--interval', '1s'], [100, 30]);
    await t.waitFor(/q quit/, 'the live screen', 20_000);
    // Ports, 5-tuples, Sources, Namespaces, Pods, then Ranges
    t.keys('Tab', 'Tab', 'Tab', 'Tab');
    await t.waitFor(/\[Pods\]/);
    t.keys('Tab');
    const range = `udp ${FIRST}-${FIRST + PORTS - 1}`;
    // held only (no new flow in the window yet): no role, the range's entries as the census counted them
    let s = await t.waitFor((x) => /\[Ranges\]/.test(x) && new RegExp(`${range} +— .* ${n(before)} *│`).test(x), `${range} holding ${before}`, 20_000);
    expect(s).toMatch(/occ census \d+s ago/);
    // new flows while the screen is open (20 every 300 ms, bounded): the window shows the role the kernel counted
    let sending = true;
    let sent = 0;
    const traffic = (async () => {
      for (let i = 0; i < 60 && sending; i++) {
        await runLoad(lab, ['--udp', `${lab.srvAddr4}:${FIRST}`, '--flows', String(PORTS), '--port-span', String(PORTS), '--max-ms', '5000']);
        sent += PORTS;
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      await t.waitFor((x) => new RegExp(`${range} +server +\\S+ +[1-9][\\d,.]* `).test(x), `${range} as a server range with new flows`, 20_000);
      // Roles: the same 20 ports as one row
      t.keys('Tab');
      await t.waitFor((x) => /\[Roles\]/.test(x) && new RegExp(`udp server \\(${PORTS} ports\\) +\\S+ +[1-9]`).test(x), `udp server (${PORTS} ports)`, 20_000);
    } finally {
      sending = false;
      await traffic;
    }
    // at rest: the role row holds what the kernel lists, as the next census counts it
    const total = listed();
    expect(total).toBeGreaterThan(before + sent * 0.9);
    await t.waitFor((x) => new RegExp(`udp (server|\\(none new\\)) \\(${PORTS} ports\\) .* ${n(total)} *│`).test(x), `the ${PORTS} ports holding ${total}`, 20_000);
    t.keys('BTab');
    await t.waitFor((x) => /\[Ranges\]/.test(x) && new RegExp(`${range} .* ${n(total)} *│`).test(x), `${range} holding ${total}`, 20_000);
    t.keys('q');
    s = await t.waitFor(/ctop-exit=\d+/, 'ctop to exit');
    expect(s).toContain('ctop-exit=0');
  }, 120_000);
});
