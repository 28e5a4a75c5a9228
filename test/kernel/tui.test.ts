/**
 * The live screen, driven as an operator would: the real program (dist/, via
 * bin/ctop) in a tmux pane at 80x24, keys through send-keys, the screen read
 * back with capture-pane. It plays fixture recordings (--replay), so it needs
 * no root; it lives in the kernel project only because that project runs
 * files one at a time. Every wait polls for the expected text with a
 * deadline; the tmux server is this file's own and is killed at the end.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT } from '../support/cli.js';
import { Tmux } from '../support/tmux.js';
import { BURST_PORT, RANGE_HELD, RANGE_INSERTS, STREAM_HELD, burstWindow, fixtureWindow, rangeWindow, recordingText } from '../support/tuiFixtures.js';

const WAIT_MS = 10_000;
let dir = '';
let t: Tmux;

/** Starts ctop in a new pane (80x24 unless given); the pane's shell prints a line first and ctop's exit status after. */
const start = (args: string[], env: Record<string, string> = {}, size: [number, number] = [80, 24]): void => t.start(args, { env, size, banner: true });
const screen = (escapes = false): string => t.screen(escapes);
const keys = (...k: string[]): void => t.keys(...k);
const waitFor = (what: RegExp | ((s: string) => boolean), timeoutMs = WAIT_MS): Promise<string> => t.waitFor(what, String(what), timeoutMs);
const press = (after: RegExp | ((s: string) => boolean), ...k: string[]): Promise<string> => t.press(after, ...k);
const paneInfo = (format: string): string => t.paneInfo(format);

/** After ctop exits: its status, and the terminal as the shell gets it back. */
async function expectRestored(code: number): Promise<string> {
  const s = await waitFor(/ctop-exit=\d+/);
  expect(s).toContain(`ctop-exit=${code}`);
  expect(s).toContain('shell before ctop'); // the main screen is back, as it was
  expect(s).not.toMatch(/Top talkers|\[Ports\]|Rates per second|data source failed/);
  expect(paneInfo('#{alternate_on}')).toBe('0');
  expect(paneInfo('#{cursor_flag}')).toBe('1');
  expect(paneInfo('#{keypad_flag}')).toBe('0');
  return s;
}

const FIX = (): string => join(dir, 'six.jsonl');
const LONG = (): string => join(dir, 'long.jsonl');
const BAD = (): string => join(dir, 'bad.jsonl');
const RANGES = (): string => join(dir, 'ranges.jsonl');

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'commands', 'top.js'))) throw new Error('dist/ is not built: run `npx tsc -p tsconfig.json`');
  t = new Tmux();
  dir = mkdtempSync(join(tmpdir(), 'ctop-tui-'));
  writeFileSync(FIX(), recordingText([0, 1, 2, 3, 4, 5].map((i) => fixtureWindow(i))));
  writeFileSync(LONG(), recordingText(Array.from({ length: 300 }, (_, i) => fixtureWindow(i % 8))));
  writeFileSync(RANGES(), recordingText([0, 1, 2, 3, 4, 5].map((i) => rangeWindow(i))));
  writeFileSync(BAD(), recordingText([0, 1, 2].map((i) => fixtureWindow(i)), '{"schema":"ctop.snapshot/v1","host":"cut sho\n'));
});

afterEach(() => t?.killSession());

afterAll(() => {
  t?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('live screen (ctop --replay, in tmux)', () => {
  it('bare `ctop` opens the screen: every panel at 80x24, replay to its end', async () => {
    start(['--replay', FIX(), '--interval', '200ms']);
    const s = await waitFor(/replay 6\/6 end/);
    const lines = s.split('\n');
    expect(lines[0]).toMatch(/^ ctop {2}fixture-host {2}6\.18\.0-test {2}tier netfilter {2}every 200ms/);
    expect(s).toMatch(/table █+░+ 53\.4%  35,000\/65,536 \(fullest ns\)  net \+3,000\/s  full in 11s/);
    for (const t of ['Rates per second', 'Hash buckets', 'model (uniform hash, Poisson λ=4.42)', '[Ports]', 'Refused by conntrack', 'NOTRACK candidates']) expect(s).toContain(t);
    expect(s).toMatch(/inserts .*1,010/);
    expect(s).toMatch(/udp 53 .*ctop-t-s.* 650 +625 +625 +25\.0 +64\.4%/); // the window's rate, then over 10 s and 60 s
    expect(s).toMatch(/ports: udp\/53 25/);
    expect(s).toMatch(/udp 198\.18\.0\.66:5353 → 198\.18\.0\.2:… 25/);
    // the NOTRACK panel: advise's candidates for the busiest namespace (its share of that namespace's new entries)
    expect(s).toMatch(/1 udp\/53 server +92\.9%/);
    expect(lines.every((l) => l.length <= 80)).toBe(true);
    keys('q');
    await expectRestored(0);
  });

  it('Tab and Shift-Tab switch views; s sorts; arrows, j/k and Enter show the selected row', async () => {
    start(['top', '--replay', FIX(), '--interval', '200ms']);
    await waitFor(/replay 6\/6 end/);
    await press(/\[5-tuples\][\s\S]*udp 198\.18\.0\.10:40000 → 198\.18\.0\.2:53/, 'Tab');
    await press(/\[Sources\][\s\S]*198\.18\.0\.10 +ctop-t-s… +138/, 'Tab');
    await press(/\[Namespaces\][\s\S]*ctop-t-srv +53\.4% +700 +675 +675 +25\.0 +69\.3% +35,000/, 'Tab');
    // no pod in this recording: the Pods view says so
    await press(/\[Pods\][\s\S]*no Kubernetes pod here/, 'Tab');
    await press(/\[Ranges\]/, 'Tab');
    await press(/\[Roles\]/, 'Tab');
    await press(/\[Ports\]/, 'Tab');
    await press(/\[Roles\]/, 'BTab');
    await press(/\[Ports\]/, 'Tab');
    // Sort: over 10 s, over 60 s, drops, occupancy (no census in this recording: every row holds "—"), name, back to inserts.
    let s = await press(/by inserts\/s over 10s/, 's');
    expect(s).toMatch(/10s▼/);
    s = await press(/by inserts\/s over 60s/, 's');
    s = await press(/by drops\/s/, 's');
    expect(s).toMatch(/drops\/s▼/);
    s = await press(/by occupancy/, 's');
    expect(s).toMatch(/occ▼/);
    s = await press(/by name/, 's');
    expect(s.indexOf('icmp type 8')).toBeLessThan(s.indexOf('udp 53'));
    s = await press(/by inserts\/s(?! over)/, 's');
    expect(s.indexOf('udp 53')).toBeLessThan(s.indexOf('icmp type 8'));
    // Move: j, Down, k, then Enter shows that row.
    keys('j');
    keys('Down');
    keys('k');
    s = await press(/Details/, 'Enter');
    expect(s).toMatch(/tcp 443/);
    expect(s).toMatch(/port \(original destination\) +443/);
    s = await press(/port \(original destination\) +80 /, 'Down'); // details follow the selection
    keys('Up');
    await waitFor(/port \(original destination\) +443/);
    await press((x) => !x.includes('Details'), 'Escape');
    await press(/Details[\s\S]*host \(inode 4026531840\)/, 'Enter');
    keys('Enter');
    await waitFor((x) => !x.includes('Details'));
  });

  it('Ranges and Roles: inserts/s, 10 s, 60 s and occ per port range and per role, sortable, with details', async () => {
    start(['--replay', RANGES(), '--interval', '200ms']);
    await waitFor(/replay 6\/6 end/);
    const n = (x: number): string => x.toLocaleString('en-US');
    // Ports, 5-tuples, Sources, Namespaces, Pods, then Ranges: the 100-port range as one row, with its role
    keys('Tab', 'Tab', 'Tab', 'Tab');
    await waitFor(/\[Pods\]/);
    let s = await press(/\[Ranges\]/, 'Tab');
    expect(s).toMatch(/ ports +role +ins\/s▼ +10s +60s +drops\/s +share +occ /);
    expect(s).toMatch(new RegExp(`udp 60000-60099 +server +${100 * RANGE_INSERTS} +${100 * RANGE_INSERTS} +${100 * RANGE_INSERTS} +0 +22\\.9% +${n(100 * RANGE_HELD)} `));
    expect(s).toMatch(/udp 53 +server +650 +625 +625 +25\.0 +49\.6% +20,000 /);
    expect(s).toMatch(/udp 123 \(v6\) +client +50\.0 /);
    expect(s.indexOf('udp 53 ')).toBeLessThan(s.indexOf('udp 60000-60099'));
    // by occupancy: the 64 ports that only hold entries, as one range with no role, come first
    keys('s', 's', 's');
    s = await press(/by occupancy/, 's');
    expect(s).toMatch(/occ▼/);
    expect(s).toMatch(new RegExp(`udp 20000-20063 +— +0 +0 +0 +0 +0\\.0% +${n(64 * STREAM_HELD)} `));
    expect(s.indexOf('udp 20000-20063')).toBeLessThan(s.indexOf('udp 53 '));
    expect(s.indexOf('udp 53 ')).toBeLessThan(s.indexOf('udp 60000-60099'));
    // Enter: the range's ports, role and evidence, what it holds
    keys('Down', 'Down');
    s = await press(/Details/, 'Enter');
    expect(s).toMatch(/ports \(original destination\) +60000-60099 \(100 ports\)/);
    expect(s).toMatch(/new entries by role +100 % of new entries to a local server/);
    expect(s).toMatch(new RegExp(`entries held +${100 * RANGE_HELD} `));
    await press((x) => !x.includes('Details'), 'Escape');
    // the filter takes a port inside a range
    keys('/');
    await waitFor(/\/ filter: █/);
    keys('-l', '60042');
    s = await press(/filter 60042 \(1\)/, 'Enter');
    expect(s).toMatch(/udp 60000-60099 +server/);
    await press((x) => !x.includes('filter 60042'), 'Escape');
    // Roles: each port once, in the group of its roles; the ports that made no new entry apart
    s = await press(/\[Roles\]/, 'Tab');
    expect(s).toMatch(new RegExp(`udp server \\(101 ports\\) +ctop-t-s… +${650 + 100 * RANGE_INSERTS} +25\\.0 +72\\.5% +${n(20_000 + 100 * RANGE_HELD)} `));
    expect(s).toMatch(/udp client \(1 port\) +ctop-t-s… +50\.0 +0 +3\.8% +0 /);
    expect(s).toMatch(/tcp server \(2 ports\) +host +300 +0 +22\.9% +900 /);
    keys('s');
    s = await press(/by occupancy/, 's');
    expect(s).toMatch(new RegExp(`udp \\(none new\\) \\(64 ports\\) +ctop-t-s… +0 +0 +0\\.0% +${n(64 * STREAM_HELD)} `));
    expect(s.indexOf('udp (none new)')).toBeLessThan(s.indexOf('udp server'));
    keys('q');
    await expectRestored(0);
  });

  it('/ filters by protocol, port, address and namespace; a bad filter says why; Esc clears', async () => {
    start(['--replay', FIX(), '--interval', '200ms']);
    await waitFor(/replay 6\/6 end/);
    keys('/');
    await waitFor(/\/ filter: █/);
    keys('-l', 'tcp');
    await waitFor(/\/ filter: tcp█/);
    let s = await press(/filter tcp \(2\)/, 'Enter');
    expect(s).toMatch(/tcp 443/);
    expect(s).not.toMatch(/udp 53 /);
    keys('/', 'C-u');
    keys('-l', '123');
    s = await press(/filter 123 \(1\)/, 'Enter');
    expect(s).toMatch(/udp 123 \(v6\)/);
    await press(/\[5-tuples\]/, 'Tab');
    keys('/', 'C-u');
    keys('-l', '198.18.0.66');
    s = await press(/filter 198\.18\.0\.66 \(1\)/, 'Enter');
    expect(s).toMatch(/udp 198\.18\.0\.66:5353 → 198\.18\.0\.2:53/);
    keys('Tab', 'Tab');
    keys('/', 'C-u');
    keys('-l', 'ns:host');
    s = await press(/\[Namespaces\].*filter ns:host \(1\)/, 'Enter');
    expect(s).not.toMatch(/ctop-t-srv +53\.4%/);
    keys('/', 'C-u');
    keys('-l', 'port:99999');
    await press(/'99999' is not a port/, 'Enter');
    await press((x) => !x.includes('/ filter:'), 'Escape');
    s = await press((x) => !x.includes("filter ns:host"), 'Escape');
    expect(s).toMatch(/ctop-t-srv +53\.4%/);
  });

  it('? shows the help built from the key table; n shows advise\'s NOTRACK candidates and rules', async () => {
    start(['--replay', FIX(), '--interval', '200ms']);
    await waitFor(/replay 6\/6 end/);
    let s = await press(/─ Help ─/, '?');
    for (const t of ['q, Ctrl-C', 'Tab', 'Shift-Tab', '↑, k', '↓, j', 'Enter', 'Esc', 'pause or resume', 'next sort: inserts/s, over 10s, 60s']) expect(s).toContain(t);
    await press((x) => !x.includes('─ Help ─'), '?');
    // advise's candidates and the rules `ctop notrack apply` loads (a replay has no roles counted: server assumed, said)
    s = await press(/─ NOTRACK ─/, 'n');
    expect(s).toMatch(/> 1\. udp\/53  server/);
    expect(s).toContain('roles not counted by this probe tier: server assumed');
    expect(s).toContain('udp dport 53 counter notrack comment "ctop udp/53 prerouting dport"');
    expect(s).toContain('apply needs the live kernel, not a replay');
    await press((x) => !x.includes('─ NOTRACK ─'), 'Escape');
  });

  it('a one-second burst stays on screen: 10 s column for ten windows, 60 s column for a minute, then gone', async () => {
    // udp/7777 makes 30,000 entries in window 5 of each recording and nothing else
    const rec = (windows: number): string => {
      const f = join(dir, `burst-${windows}.jsonl`);
      writeFileSync(f, recordingText(Array.from({ length: windows }, (_, i) => burstWindow(i, 5))));
      return f;
    };
    const row = new RegExp(`udp ${BURST_PORT} +ctop-t-s… +(\\S+) +(\\S+) +(\\S+) `);
    const cells = async (windows: number): Promise<string[] | null> => {
      start(['--replay', rec(windows), '--interval', '100ms']);
      const s = await waitFor(new RegExp(`replay ${windows}/${windows} end`));
      keys('q');
      await waitFor(/ctop-exit=0/);
      return row.exec(s)?.slice(1, 4) ?? null;
    };
    // the burst's own window: 30,000/s; over the six seconds seen so far, 5,000/s
    expect(await cells(6)).toEqual(['30.0k', '5,000', '5,000']);
    // nine windows later: gone from the window's rate, still in both spans
    expect(await cells(15)).toEqual(['0', '3,000', '2,000']);
    // past ten seconds: only the minute remembers it (30,000 over 60 s)
    expect(await cells(65)).toEqual(['0', '0', '500']);
    // a minute on, the row is gone
    expect(await cells(66)).toBeNull();
  }, 30_000);

  it('p pauses: the replay stops where it is and resumes on p', async () => {
    start(['--replay', LONG(), '--interval', '100ms']);
    await waitFor(/replay [3-9]\/300/);
    const s = await press(/PAUSED replay \d+\/300/, 'p');
    const at = /PAUSED replay (\d+)\/300/.exec(s)![1];
    await new Promise((r) => setTimeout(r, 600)); // six intervals: nothing may move
    expect(screen()).toContain(`PAUSED replay ${at}/300`);
    keys('Down'); // keys still work while paused
    await press(/\[5-tuples\]/, 'Tab');
    expect(screen()).toContain(`PAUSED replay ${at}/300`);
    keys('p');
    await waitFor((x) => !x.includes('PAUSED') && Number(/replay (\d+)\/300/.exec(x)?.[1]) > Number(at));
  });

  it('follows resizes, down to a polite "too small" and back', async () => {
    start(['--replay', FIX(), '--interval', '200ms']);
    await waitFor(/replay 6\/6 end/);
    t.resize(120, 50);
    let s = await waitFor((x) => x.split('\n')[0]!.trimEnd().length > 80 && x.split('\n').length >= 50);
    expect(s).toMatch(/Refused by conntrack/);
    expect(s).toMatch(/ 2 +[\d,]+ █/); // tall: one histogram row per chain length
    t.resize(60, 18);
    s = await waitFor((x) => x.split('\n')[0]!.length <= 60 && /\[Ports\]/.test(x) && !x.includes('NOTRACK candidates'));
    expect(s.split('\n').every((l) => l.length <= 60)).toBe(true);
    t.resize(30, 10);
    await waitFor(/terminal is 30x10/);
    t.resize(80, 24);
    s = await waitFor(/NOTRACK candidates/);
    expect(s.split('\n').every((l) => l.length <= 80)).toBe(true);
  });

  it('colour by default; NO_COLOR leaves only bold and inverse', async () => {
    const sgr = (s: string): string[] => [...s.matchAll(/\x1b\[([0-9;]*)m/g)].flatMap((m) => m[1]!.split(';'));
    const isColour = (p: string): boolean => /^(3[0-8]|4[0-8]|9[0-7]|10[0-7])$/.test(p);
    start(['--replay', FIX(), '--interval', '200ms']);
    await waitFor(/replay 6\/6 end/);
    expect(sgr(screen(true)).some(isColour)).toBe(true);
    t.killSession();
    start(['--replay', FIX(), '--interval', '200ms'], { NO_COLOR: '1' });
    await waitFor(/replay 6\/6 end/);
    const params = sgr(screen(true));
    expect(params.filter(isColour)).toEqual([]);
    expect(params).toContain('7'); // the header is still inverse
  });

  it('q, Ctrl-C and SIGTERM give the terminal back', async () => {
    start(['--replay', FIX(), '--interval', '200ms']);
    await waitFor(/\[Ports\]/);
    keys('q');
    await expectRestored(0);
    t.killSession();

    start(['--replay', FIX(), '--interval', '200ms']);
    await waitFor(/\[Ports\]/);
    keys('C-c');
    await expectRestored(0);
    t.killSession();

    start(['--replay', FIX(), '--interval', '200ms']);
    await waitFor(/\[Ports\]/);
    process.kill(t.ctopPid(), 'SIGTERM');
    await expectRestored(143);
  });

  it('a crash gives the terminal back and prints the bug report', async () => {
    // CTOP_TEST_FAULT=uncaught (test-only) throws from a timer once the screen is up.
    start(['--replay', FIX(), '--interval', '200ms'], { CTOP_TEST_FAULT: 'uncaught' });
    const s = await expectRestored(1);
    expect(s).toMatch(/ctop: internal error, please report it:/);
    expect(s).toMatch(/injected fault/);
  });

  it('a failing source: full-screen message, a retry each second, recovery when the file is fixed', async () => {
    start(['--replay', BAD(), '--interval', '200ms']);
    let s = await waitFor(/data source failed/);
    expect(s).toMatch(/bad\.jsonl: line 5: cut short or corrupt/);
    expect(s).toMatch(/Retrying every second/);
    expect(s).not.toMatch(/\[Ports\]/);
    const attempt = (x: string): number => Number(/attempt (\d+)/.exec(x)?.[1] ?? 0);
    const first = attempt(s);
    const t0 = Date.now();
    s = await waitFor((x) => attempt(x) === first + 1, 3000);
    expect(Date.now() - t0).toBeGreaterThan(500); // a second apart, not every 200 ms
    // The recording is completed: the screen comes back and plays on.
    writeFileSync(BAD(), recordingText([0, 1, 2, 3, 4].map((i) => fixtureWindow(i))));
    s = await waitFor(/replay 5\/5 end/, 4000);
    expect(s).toMatch(/\[Ports\]/);
    keys('q');
    await expectRestored(0);
  });

  it('without a terminal it refuses in one line; a missing file fails before the screen', () => {
    const piped = spawnSync(process.execPath, [CLI, '--replay', FIX()], { encoding: 'utf8', timeout: 10_000 });
    expect(piped.status).toBe(2);
    expect(piped.stderr).toMatch(/^ctop: the live screen needs a terminal\nhint: .*ctop snapshot/);
    const missing = spawnSync(process.execPath, [CLI, '--replay', join(dir, 'nope.jsonl')], { encoding: 'utf8', timeout: 10_000 });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/nope\.jsonl: no such file/);
  });
});
