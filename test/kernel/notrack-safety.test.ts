/**
 * `ctop notrack` as a root tool on a shared host: the state directory is
 * distrusted, the backup is verified before root loads it, one change per
 * namespace at a time, the watchdog's deadline and namespace cannot be moved
 * under it, and "rolled back" is said only when the kernel's ruleset shows it.
 * Each case reproduces an attack or failure on the real kernel, in a lab
 * namespace (the host ruleset is never touched); the unprivileged attacker
 * runs as nobody (runuser).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLab, runLoad, startServer, type Lab } from '../lab/netns.js';
import { CLI, expectOneLineError, killStrayClis, runCli, startCli, processAlive } from '../support/cli.js';

afterEach(killStrayClis);

const CLOCK_STEP = fileURLToPath(new URL('../support/clock-step.mjs', import.meta.url));

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs argv as the unprivileged user nobody (uid 65534). */
function asNobody(argv: string[]): string {
  return execFileSync('runuser', ['-u', 'nobody', '--', ...argv], { encoding: 'utf8', timeout: 10_000 });
}

describe('notrack state, lock and watchdog', () => {
  let lab: Lab;
  let base: string;
  const ruleset = () => lab.exec(lab.srv, ['nft', 'list', 'ruleset']);
  const dirs: string[] = [];
  const freshStateDir = (): string => {
    const d = join(base, `s${dirs.length}`);
    dirs.push(d);
    return d;
  };
  /** Leaves srv without ctop's table, whatever a failed case left. */
  const cleanTable = () => {
    try {
      lab.exec(lab.srv, ['nft', 'delete', 'table', 'inet', 'ctop_notrack']);
    } catch {
      /* absent */
    }
  };

  beforeAll(() => {
    lab = createLab();
    // 0711: root's state dirs below stay reachable, the test's attacker (nobody) gets its own dir in /tmp
    base = mkdtempSync(join(tmpdir(), 'ctop-notrack-safety-'));
  });

  afterAll(() => {
    lab?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  afterEach(cleanTable);

  it('creates a missing state dir 0700 and refuses one another user owns or can write, changing nothing', () => {
    const before = ruleset();
    const fresh = join(freshStateDir(), 'nested');
    const ok = runCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', fresh, '--yes', '--confirm-within', '1s']);
    expect(ok.stderr).toMatch(/applied in/);
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
    expect(statSync(fresh).uid).toBe(0);
    expect(ruleset()).toBe(before);

    // world-writable, root-owned
    const open = freshStateDir();
    mkdirSync(open);
    chmodSync(open, 0o777);
    const r1 = runCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', open, '--yes', '--confirm-within', '1s']);
    expect(r1.code).toBe(1);
    expect(expectOneLineError(r1.stderr.trimEnd().split('\n').slice(-2).join('\n')).message).toMatch(/state directory .* is writable by group or others/);
    expect(ruleset()).toBe(before);
    expect(readdirSync(open)).toEqual([]);

    // a symlink to a directory root owns is refused too (the link itself can be replaced)
    const link = `${open}-link`;
    execFileSync('ln', ['-s', fresh, link]);
    const r2 = runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', link]);
    expect(r2.code).toBe(1);
    expect(expectOneLineError(r2.stderr).message).toMatch(/state directory .* is a symbolic link/);
  });

  it("an unprivileged user's state dir (--state-dir /tmp/...) is refused before root loads anything from it", async () => {
    const before = ruleset();
    // the attacker prepares the directory the operator will name
    const evil = mkdtempSync(join(tmpdir(), 'ctop-evil-'));
    rmSync(evil, { recursive: true });
    asNobody(['mkdir', '-m', '0755', evil]);
    dirs.push(evil);
    expect(statSync(evil).uid).toBe(65534);
    const run = startCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', evil, '--yes', '--confirm-within', '2s'], /applied in|ctop: /);
    // meanwhile the attacker swaps in a backup that loads a table of theirs at rollback
    const swap = (async () => {
      for (let i = 0; i < 40; i++) {
        for (const f of readdirSync(evil).filter((n) => n.endsWith('.backup.json'))) {
          const forged = JSON.stringify({ table: 'table inet ctop_notrack {\n}\ntable inet pwned {\n}', takenAt: new Date().toISOString() });
          asNobody(['sh', '-c', `printf '%s' '${forged}' > ${evil}/x && mv -f ${evil}/x ${join(evil, f)}`]);
          return true;
        }
        await sleep(50);
      }
      return false;
    })();
    const { done } = await run.catch(() => ({ done: Promise.resolve({ code: 1, stdout: '', stderr: 'exited early' }) }));
    const r = await done;
    await swap;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ctop: state directory .* is owned by uid 65534/);
    expect(ruleset()).not.toMatch(/pwned/);
    expect(ruleset()).toBe(before);
    rmSync(evil, { recursive: true, force: true });
  });

  it('a corrupt or edited backup is refused by revert (one line, nothing loaded) and by the watchdog (loud, not "rolled back")', async () => {
    const dir = freshStateDir();
    const before = ruleset();
    // a confirmed apply leaves a backup for revert
    const { done } = await startCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes', '--confirm-within', '20s'], /applied in/);
    expect(runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', dir]).code).toBe(0);
    expect((await done).code).toBe(0);
    const backupFile = join(dir, readdirSync(dir).find((f) => f.endsWith('.backup.json'))!);
    const good = readFileSync(backupFile, 'utf8');
    const applied = ruleset();
    for (const bad of ['{"table": "table inet ctop_notrack {', JSON.stringify({ ...JSON.parse(good), table: 'table inet pwned {\n}' })]) {
      writeFileSync(backupFile, bad, { mode: 0o600 });
      const rv = runCli(['notrack', 'revert', '--netns', lab.srv, '--state-dir', dir]);
      expect(rv.code).toBe(1);
      expect(expectOneLineError(rv.stderr).message).toMatch(/backup .* (is not valid|does not match its checksum)/);
      expect(ruleset()).toBe(applied);
    }
    writeFileSync(backupFile, good, { mode: 0o600 });
    expect(runCli(['notrack', 'revert', '--netns', lab.srv, '--state-dir', dir]).code).toBe(0);
    expect(ruleset()).toBe(before);

    // the watchdog meets an edited backup at the deadline
    const run = await startCli(['notrack', 'apply', 'udp/7001', '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes', '--confirm-within', '2s'], /applied in/);
    const bf = join(dir, readdirSync(dir).find((f) => f.endsWith('.backup.json'))!);
    writeFileSync(bf, JSON.stringify({ ...JSON.parse(readFileSync(bf, 'utf8')), table: 'table inet pwned {\n}' }), { mode: 0o600 });
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ctop: notrack apply: .*NOT rolled back/);
    expect(r.stderr).toMatch(/hint: .*nft delete table inet ctop_notrack/);
    expect(ruleset()).not.toMatch(/pwned/);
    expect(ruleset()).toMatch(/udp dport 7001/);
  });

  it('"rolled back" only when the ruleset shows it: a killed watchdog gives a loud error with the manual command', async () => {
    const dir = freshStateDir();
    const { done } = await startCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes', '--confirm-within', '2s'], /applied in/);
    const armed = readdirSync(dir).find((f) => /\.armed/.test(f));
    const dog = Number(readFileSync(join(dir, armed!), 'utf8').trim());
    expect(processAlive(dog)).toBe(true);
    process.kill(dog, 'SIGKILL');
    const r = await done;
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/rolled back$/m);
    const err = expectOneLineError(r.stderr.trimEnd().split('\n').slice(-2).join('\n'));
    expect(err.message).toMatch(/NOT rolled back: ctop's table in namespace .* still holds the change/);
    expect(err.hint).toMatch(/ctop notrack revert --netns \S+ --state-dir \S+/);
    expect(ruleset()).toMatch(/tcp dport 7000/);
    // the manual command it names works
    expect(runCli(['notrack', 'revert', '--netns', lab.srv, '--state-dir', dir]).code).toBe(0);
    expect(ruleset()).not.toMatch(/ctop_notrack/);
  });

  it('concurrent applies in one namespace: exactly one changes the ruleset, the others refuse, the rollback restores the original', async () => {
    const dir = freshStateDir();
    const before = ruleset();
    const ports = ['tcp/7000', 'udp/7001', 'udp/7005', 'tcp/7006'];
    // Widen the window between "nothing pending" and the pending record: reading ctop's table takes 1 s.
    // (The wrapper is found only through PATH, which ctop does not use for nft; the lock must hold without it.)
    const slow = join(base, 'slow-bin');
    mkdirSync(slow, { recursive: true });
    writeFileSync(join(slow, 'nft'), '#!/bin/sh\ncase "$*" in *"list table inet ctop_notrack"*) sleep 1;; esac\nexec /usr/sbin/nft "$@"\n', { mode: 0o755 });
    const runs = ports.map((p) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'notrack', 'apply', p, '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes', '--confirm-within', '3s'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: `${slow}:${process.env.PATH}` } });
        let stderr = '';
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code, stderr }));
      }),
    );
    const results = await Promise.all(runs);
    const applied = results.filter((r) => /applied in/.test(r.stderr));
    expect(applied.length, results.map((r) => r.stderr).join('\n---\n')).toBe(1);
    for (const r of results.filter((x) => !/applied in/.test(x.stderr))) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ctop: (another ctop notrack is changing|an earlier change in) namespace/);
    }
    expect(applied[0]!.stderr).toMatch(/rolled back/);
    expect(ruleset()).toBe(before);
  });

  it('nft, iptables, conntrack and nsenter are run from the system directories, never found through PATH', () => {
    const fake = join(base, 'fake-bin');
    const hit = join(base, 'fake-bin-ran');
    mkdirSync(fake, { recursive: true });
    for (const tool of ['nft', 'iptables', 'iptables-save', 'ip6tables-save', 'iptables-legacy-save', 'ip6tables-legacy-save', 'iptables-nft-save', 'conntrack', 'nsenter', 'sh', 'cat']) {
      writeFileSync(join(fake, tool), `#!/bin/sh\necho ${tool} >> ${hit}\nexit 1\n`, { mode: 0o755 });
    }
    const r = runCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', freshStateDir()], { env: { PATH: `${fake}:${process.env.PATH}` } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/tcp dport 7000/);
    expect(existsSync(hit) ? readFileSync(hit, 'utf8') : '').toBe('');
  });

  it('--force applies a port the safety check marks unsafe (a NATed port); without it, the same apply is refused', async () => {
    lab.exec(lab.srv, ['nft', '-f', '-'], { input: 'table ip ctop_test_force_nat {\n  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n    udp dport 7009 dnat to 198.18.0.2\n  }\n}\n' });
    try {
      const dir = freshStateDir();
      const before = ruleset();
      const refused = runCli(['notrack', 'apply', 'udp/7009', '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/unsafe to exempt udp\/7009/);
      expect(ruleset()).toBe(before);
      const { done } = await startCli(['notrack', 'apply', 'udp/7009', '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes', '--force', '--confirm-within', '20s'], /applied in/);
      expect(ruleset()).toMatch(/udp dport 7009 .*notrack/);
      expect(runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', dir]).code).toBe(0);
      expect((await done).code).toBe(0);
      expect(runCli(['notrack', 'revert', '--netns', lab.srv, '--state-dir', dir]).code).toBe(0);
      expect(ruleset()).toBe(before);
    } finally {
      lab.exec(lab.srv, ['nft', 'delete', 'table', 'ip', 'ctop_test_force_nat']);
    }
  });

  it('a validate whose change does not do what it should is rolled back at once, to the byte', async () => {
    const dir = freshStateDir();
    const stateless = () => lab.exec(lab.srv, ['nft', '-s', 'list', 'ruleset']);
    const before = stateless();
    const stop = (await startServer(lab, { udp: [7010] })).stop;
    try {
      // the traffic is a server's (requests in with dport 7010); the client role exempts dport 7010 going out: inserts do not fall
      const { done } = await startCli(['validate', '--port', 'udp/7010', '--role', 'client', '--netns', lab.srv, '--duration', '2s', '--json', '--state-dir', dir], /measuring/);
      let go = true;
      const loop = (async () => {
        for (let i = 0; i < 100 && go; i++) {
          await runLoad(lab, ['--udp', `${lab.srvAddr4}:7010`, '--flows', '50']);
          await sleep(50);
        }
      })();
      const r = await done;
      go = false;
      await loop;
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/ctop: validate: .*rolled back/);
      expect(stateless()).toBe(before);
      expect(readdirSync(dir).filter((f) => /pending|rollingback/.test(f))).toEqual([]);
    } finally {
      await stop();
    }
  });

  it("the deadline is monotonic: a wall-clock step does not roll back early", async () => {
    const dir = freshStateDir();
    const env = { NODE_OPTIONS: `--import=${CLOCK_STEP}`, CTOP_TEST_CLOCK_STEP_MS: String(24 * 3600_000) };
    const { done } = await startCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes', '--confirm-within', '6s'], /applied in/, 30_000, env);
    await sleep(1500);
    expect(ruleset()).toMatch(/tcp dport 7000/);
    const c = runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', dir]);
    expect(c.code, c.stderr).toBe(0);
    expect((await done).code).toBe(0);
    expect(ruleset()).toMatch(/tcp dport 7000/);
  });

  it("a finished watchdog never touches a later apply's record or marker", async () => {
    const dir = freshStateDir();
    const first = await startCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes', '--confirm-within', '2s'], /applied in/);
    const dog1 = Number(/watchdog pid (\d+)/.exec(readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.log'))!), 'utf8'))?.[1] ?? NaN) || Number(readFileSync(join(dir, readdirSync(dir).find((f) => /\.armed/.test(f))!), 'utf8'));
    // a busy host: the first watchdog is not scheduled between confirm and the next apply
    process.kill(dog1, 'SIGSTOP');
    try {
      expect(runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', dir]).code).toBe(0);
      expect((await first.done).code).toBe(0);
      const second = await startCli(['notrack', 'apply', 'udp/7001', '--role', 'server', '--netns', lab.srv, '--state-dir', dir, '--yes', '--confirm-within', '30s'], /applied in/);
      await sleep(2500); // past the first watchdog's deadline
      process.kill(dog1, 'SIGCONT');
      const end = Date.now() + 5000;
      while (processAlive(dog1) && Date.now() < end) await sleep(100);
      expect(processAlive(dog1)).toBe(false);
      expect(ruleset()).toMatch(/udp dport 7001/);
      expect(readdirSync(dir).filter((f) => /\.armed/.test(f))).toHaveLength(1);
      const c = runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', dir]);
      expect(c.code, c.stderr).toBe(0);
      expect((await second.done).code).toBe(0);
    } finally {
      if (processAlive(dog1)) process.kill(dog1, 'SIGCONT');
    }
  });

  it('the watchdog acts on the namespace it was started for, even if its name is reused', async () => {
    const dir = freshStateDir();
    const name = `ctop-t-pin-${process.pid}`;
    execFileSync('ip', ['netns', 'add', name]);
    try {
      const { done } = await startCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', name, '--state-dir', dir, '--yes', '--confirm-within', '3s'], /applied in/);
      // the name now points at another namespace, which has a ctop table of its own
      execFileSync('ip', ['netns', 'del', name]);
      execFileSync('ip', ['netns', 'add', name]);
      execFileSync('ip', ['netns', 'exec', name, 'nft', '-f', '-'], { input: 'table inet ctop_notrack {\n\tchain other_owner {\n\t}\n}\n' });
      const r = await done;
      // the original namespace (kept alive by the watchdog's fd) was rolled back; the new one is untouched
      expect(r.stderr, r.stderr).toMatch(/rolled back/);
      expect(r.code).toBe(1);
      expect(execFileSync('ip', ['netns', 'exec', name, 'nft', 'list', 'ruleset'], { encoding: 'utf8' })).toMatch(/chain other_owner/);
    } finally {
      execFileSync('ip', ['netns', 'del', name]);
    }
  });
});

