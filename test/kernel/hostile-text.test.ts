/**
 * Text an unprivileged user controls, read by root's ctop from the real
 * kernel: the comm of a process (nobody, in a user+network namespace of its
 * own) names its namespace; a chain name in that namespace's ruleset lands in
 * a command ctop suggests. Neither may put an escape on root's terminal, and
 * the suggested command must not run anything else.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
const MARKER = `/tmp/ctop-hostile-${process.pid}`;
const CHAIN = `in; touch ${MARKER}; \x1b[2J`;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe("another user's namespace, with an escape in its comm and a hostile chain name", () => {
  let tenant: ChildProcess;
  let pid = 0;

  beforeAll(async () => {
    const script = [
      // comm is 15 bytes: OSC title + BEL + clear screen
      `printf '\\033]0;PWN\\007\\033[2J' > /proc/$$/comm`,
      'conntrack -I -p udp -s 198.18.9.1 -d 198.18.9.2 --sport 1000 --dport 2000 -t 600 >/dev/null 2>&1',
      `nft -j -f - <<'EOF'\n${JSON.stringify({ nftables: [{ add: { table: { family: 'inet', name: 't' } } }, { add: { chain: { family: 'inet', table: 't', name: CHAIN, type: 'filter', hook: 'input', prio: 0, policy: 'drop' } } }] })}\nEOF`,
      'echo ready',
      'sleep 120 & wait', // bounded; killed in afterAll
    ].join('\n');
    tenant = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'unshare', '-rn', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    tenant.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await sleep(50);
    expect(out).toContain('ready');
    pid = tenant.pid!;
    // the sh that set its comm is the namespace's first process
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8')).toBe('\x1b]0;PWN\x07\x1b[2J\n');
    expect(execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'conntrack', '-C'], { encoding: 'utf8' }).trim()).toBe('1');
  });

  afterAll(() => {
    if (tenant && tenant.exitCode === null) {
      for (const p of execFileSync('pgrep', ['-P', String(tenant.pid)], { encoding: 'utf8' }).split(/\s+/).filter(Boolean)) process.kill(Number(p), 'SIGKILL');
      tenant.kill('SIGKILL');
    }
  });

  it('census names the namespace with the escape made visible', () => {
    const r = runCli(['census', '--top', '5']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`pid ${pid} (\\x1b]0;PWN\\x07\\x1b[2J)`);
    expect(r.stdout).not.toMatch(TERMINAL_CONTROL);
    expect(r.stderr).not.toMatch(TERMINAL_CONTROL);
  });

  it('snapshot too', () => {
    const r = runCli(['snapshot', '--duration', '500ms', '--census']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`(\\x1b]0;PWN\\x07\\x1b[2J)`);
    expect(r.stdout).not.toMatch(TERMINAL_CONTROL);
    expect(r.stderr).not.toMatch(TERMINAL_CONTROL);
  });

  it('notrack apply (dry run) never puts the chain name raw into a suggested command', () => {
    const r = runCli(['notrack', 'apply', 'udp/5000', '--role', 'server', '--netns', `/proc/${pid}/ns/net`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(TERMINAL_CONTROL);
    const suggested = r.stderr.split('\n').filter((l) => /needed in your own chain/.test(l));
    expect(suggested.length, r.stderr).toBeGreaterThan(0);
    for (const line of suggested) {
      const cmd = /: (nft .*|iptables .*|ip6tables .*)$/.exec(line)?.[1];
      if (cmd === undefined) {
        // no command: ctop says why
        expect(line).toMatch(/cannot be written safely in a command/);
        continue;
      }
      // run it with printf in place of nft: it must be the named chain, as one word, and nothing else runs
      const words = execFileSync('bash', ['-c', `printf '%s\\0' ${cmd.replace(/^\S+ /, '')}`], { encoding: 'utf8' }).split('\0');
      expect(words).toContain(CHAIN);
    }
    expect(existsSync(MARKER)).toBe(false);
  });
});
