// Network-namespace test lab for kernel tests and benchmarks.
//
// Two namespaces joined by a veth pair; conntrack is enabled only in the server one (an
// nft ruleset that counts but never changes verdicts), so the client stays conntrack-free.
// Traffic stays inside the lab: 198.18.0.0/15 and 2001:2::/48 only. Nothing here touches
// the host's own netns ruleset; the only host-wide knob is nf_conntrack_max, which the
// kernel only lets the initial netns write (withConntrackMax restores it).
import { execFileSync, spawn as spawnChild, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export const LOADGEN = fileURLToPath(new URL('../../tools/loadgen.mjs', import.meta.url));
const CMD_TIMEOUT_MS = 30_000; // every external command is bounded
const PREFIX = 'ctop-t-';
const CONNTRACK_MAX = '/proc/sys/net/netfilter/nf_conntrack_max';

export interface ExecOpts {
  input?: string;
  timeoutMs?: number;
}

export interface Lab {
  cli: string;
  srv: string;
  cliAddr4: string;
  srvAddr4: string;
  cliAddr6: string;
  srvAddr6: string;
  /** Run argv inside ns synchronously; returns stdout, throws with stderr on failure. */
  exec(ns: string, argv: string[], opts?: ExecOpts): string;
  /** Start argv inside ns; the lab kills it on destroy(). */
  spawn(ns: string, argv: string[]): ChildProcess;
  /** Inode of /run/netns/NAME, i.e. the netns id the kernel (and BPF) sees. */
  netnsInode(ns: string): number;
  /** Kill spawned processes, delete both namespaces. Idempotent, never throws. */
  destroy(): void;
}

export interface LoadResult {
  mode: string;
  sent?: number;
  errors?: number;
  established?: number;
  elapsedMs: number;
  [k: string]: unknown;
}

/** Run argv on the host (synchronously, bounded); throws with stderr on failure. */
export function run(argv: string[], opts: ExecOpts = {}): string {
  const [cmd, ...args] = argv as [string, ...string[]];
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? CMD_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 256 * 1024 * 1024, // e.g. `conntrack -L` on a large table
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${argv.join(' ')} failed: ${(err.stderr || err.message).trim()}`);
  }
}

function tryRun(argv: string[]): void {
  try { run(argv); } catch { /* best effort cleanup */ }
}

// Kill whatever is still inside a namespace we created, then remove it.
export function deleteNetns(name: string): void {
  try {
    for (const pid of run(['ip', 'netns', 'pids', name]).split(/\s+/).filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
    }
  } catch { /* namespace already gone */ }
  tryRun(['ip', 'netns', 'del', name]);
}

const liveLabs = new Set<Lab>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous; destroy() is, so a crashed run still cleans up.
  process.on('exit', () => { for (const lab of liveLabs) lab.destroy(); });
}

let counter = 0;

/**
 * A fresh `ctop-t-<pid>-<n>` prefix whose `-cli` namespace has just been
 * created: `ip netns add` fails if the name exists, so retrying makes names
 * unique even when several vitest workers share a pid (threads pool).
 */
export function claimLabPrefix(): string {
  for (let tries = 0; ; tries++) {
    const base = `${PREFIX}${process.pid}-${counter++}`;
    try {
      run(['ip', 'netns', 'add', `${base}-cli`]);
      return base;
    } catch (e) {
      if (tries >= 100 || !/exists/i.test((e as Error).message)) throw e;
    }
  }
}

/**
 * Turns conntrack on in a namespace: any `ct` expression registers the
 * conntrack hooks for that netns only; the rules just count (newCounters), so
 * verdicts are unchanged. (Trailing ';' before '}' for older nft.)
 */
export const COUNTING_RULESET =
  'table inet ctop_test {\n' +
  '  chain pre { type filter hook prerouting priority 0; ct state new counter; }\n' +
  '  chain out { type filter hook output priority 0; ct state new counter; }\n' +
  '}\n';

/**
 * The Lab over namespaces `names` (the first one already created, the rest
 * made by the caller): exec, spawn, and a destroy() that kills what it
 * spawned and removes every namespace in `names`, also when the process
 * exits mid-test.
 */
export function labShell(names: string[], place: Pick<Lab, 'cli' | 'srv' | 'cliAddr4' | 'srvAddr4' | 'cliAddr6' | 'srvAddr6'>): Lab {
  installExitHook();
  const children = new Set<ChildProcess>();
  let destroyed = false;
  const lab: Lab = {
    ...place,
    exec: (ns, argv, o) => run(['ip', 'netns', 'exec', ns, ...argv], o),
    spawn(ns, argv) {
      // `ip netns exec` execs the command, so child.pid is the command itself.
      const child = spawnChild('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    netnsInode: (ns) => fs.statSync(`/run/netns/${ns}`).ino,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      liveLabs.delete(lab);
      for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
      for (const n of names) deleteNetns(n);
    },
  };
  liveLabs.add(lab);
  return lab;
}

/** Gives `dev` in `ns` its two addresses (CIDR; IPv6 without DAD, so usable at once) and brings it up. */
export function addressLink(ns: string, dev: string, cidr4: string, cidr6: string): void {
  run(['ip', '-n', ns, 'addr', 'add', cidr4, 'dev', dev]);
  run(['ip', '-n', ns, 'addr', 'add', cidr6, 'dev', dev, 'nodad']);
  run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
}

/**
 * Static neighbours: right after link-up, IPv6 neighbour discovery can take
 * ~1 s, so the first datagrams sit in the neighbour queue and exact counts
 * taken right after sending come up short. Permanent entries for `addrs`
 * (the peer's, reached through `dev`) make a lab deterministic from the start.
 */
export function staticNeighbours(ns: string, dev: string, peerNs: string, peerDev: string, addrs: string[]): void {
  const lladdr = (JSON.parse(run(['ip', '-n', peerNs, '-j', 'link', 'show', 'dev', peerDev])) as { address: string }[])[0]!.address;
  for (const a of addrs) run(['ip', '-n', ns, 'neigh', 'replace', a, 'lladdr', lladdr, 'dev', dev, 'nud', 'permanent']);
}

export function createLab(opts: { conntrack?: boolean } = {}): Lab {
  const base = claimLabPrefix();
  const cli = `${base}-cli`;
  const srv = `${base}-srv`;
  const lab = labShell([cli, srv], {
    cli, srv,
    cliAddr4: '198.18.0.1', srvAddr4: '198.18.0.2',
    cliAddr6: '2001:2::1', srvAddr6: '2001:2::2',
  });
  try {
    run(['ip', 'netns', 'add', srv]);
    // Create the veth inside cli with its peer directly in srv: no host interface appears.
    run(['ip', '-n', cli, 'link', 'add', 'ct0', 'type', 'veth', 'peer', 'name', 'ct0', 'netns', srv]);
    for (const [ns, a4, a6] of [[cli, lab.cliAddr4, lab.cliAddr6], [srv, lab.srvAddr4, lab.srvAddr6]] as const) {
      run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      addressLink(ns, 'ct0', `${a4}/24`, `${a6}/64`);
    }
    staticNeighbours(cli, 'ct0', srv, 'ct0', [lab.srvAddr4, lab.srvAddr6]);
    staticNeighbours(srv, 'ct0', cli, 'ct0', [lab.cliAddr4, lab.cliAddr6]);
    if (opts.conntrack ?? true) lab.exec(srv, ['nft', '-f', '-'], { input: COUNTING_RULESET });
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}

/**
 * One namespace whose loopback holds 198.18.0.1 and whose output hook tracks
 * every new flow (COUNTING_RULESET): two senders in it race the same flows to
 * the confirm step (tools/bin/clash). Removed by destroy(), also when the
 * process exits mid-test.
 */
export function createLoopbackLab(): Lab {
  const base = claimLabPrefix();
  const ns = `${base}-cli`;
  const lab = labShell([ns], { cli: ns, srv: ns, cliAddr4: '198.18.0.1', srvAddr4: '198.18.0.1', cliAddr6: '', srvAddr6: '' });
  try {
    run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    run(['ip', '-n', ns, 'addr', 'add', '198.18.0.1/32', 'dev', 'lo']);
    lab.exec(ns, ['nft', '-f', '-'], { input: COUNTING_RULESET });
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}

/** Delete leftover ctop-t-<pid>-* namespaces whose owning pid is no longer running. */
export function cleanupStaleLabs(): string[] {
  const removed: string[] = [];
  let list = '';
  try { list = run(['ip', 'netns', 'list']); } catch { return removed; }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^ctop-t-(\d+)-\d+-(?:cli|rtr|srv|node)$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // owner alive (possibly another test run): leave it alone
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPERM') continue; // exists, not ours to judge
    }
    deleteNetns(name);
    removed.push(name);
  }
  return removed;
}

// Run loadgen in ns; resolves when the process exits, or earlier when `waitFor` is printed.
function startLoadgen(lab: Lab, ns: string, args: string[], waitFor: string | null, timeoutMs: number) {
  const child = lab.spawn(ns, [process.execPath, LOADGEN, ...args]);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<{ code: number | null; json: LoadResult | null; stderr: string }>((resolve) => {
    child.once('close', (code) => {
      const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      let json: LoadResult | null = null;
      try { json = line ? (JSON.parse(line) as LoadResult) : null; } catch { /* leave null */ }
      resolve({ code, json, stderr: stderr.trim() });
    });
  });
  const ready = waitFor === null ? null : new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`loadgen ${args.join(' ')}: no "${waitFor}" within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    const onData = () => {
      if (stdout.split('\n').includes(waitFor)) { clearTimeout(timer); resolve(); }
    };
    child.stdout!.on('data', onData);
    void exited.then((r) => {
      clearTimeout(timer);
      reject(new Error(`loadgen ${args.join(' ')} exited (${r.code}) before "${waitFor}": ${r.stderr} ${JSON.stringify(r.json)}`));
    });
  });
  // Stop: SIGTERM for a clean JSON line, SIGKILL if it lingers.
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
    const r = await exited;
    clearTimeout(t);
    return r.json;
  };
  return { child, exited, ready, stop };
}

/** Start a dual-stack loadgen server in the srv namespace; resolves once it is listening. */
export async function startServer(
  lab: Lab,
  ports: { udp?: number[]; tcp?: number[] },
  opts: { maxMs?: number; /** answer each UDP datagram */ echo?: boolean } = {},
): Promise<{ stop(): Promise<LoadResult | null> }> {
  const args = ['--max-ms', String(opts.maxMs ?? 120_000)];
  if (opts.echo) args.push('--echo');
  if (ports.udp?.length) args.push('--listen-udp', ports.udp.join(','));
  if (ports.tcp?.length) args.push('--listen-tcp', ports.tcp.join(','));
  const g = startLoadgen(lab, lab.srv, args, 'listening', 10_000);
  await g.ready;
  return { stop: g.stop };
}

/** Run loadgen (in the cli namespace unless opts.ns says otherwise) and return its JSON result. */
export async function runLoad(
  lab: Lab,
  args: string[],
  opts: { allowErrors?: boolean; timeoutMs?: number; /** default: the client namespace */ ns?: string } = {},
): Promise<LoadResult> {
  const g = startLoadgen(lab, opts.ns ?? lab.cli, args, null, 0);
  // Outer bound in case loadgen's own --max-ms fails to stop it.
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const t = setTimeout(() => g.child.kill('SIGKILL'), timeoutMs);
  const r = await g.exited;
  clearTimeout(t);
  if (r.code !== 0 && !(opts.allowErrors && r.json)) {
    throw new Error(`loadgen ${args.join(' ')} exited ${r.code}: ${r.stderr} ${JSON.stringify(r.json)}`);
  }
  if (!r.json) throw new Error(`loadgen ${args.join(' ')} printed no JSON: ${r.stderr}`);
  return r.json;
}

/** Open n TCP connections to target ("HOST:PORT") from cli and keep them until release(). */
export async function holdTcp(
  lab: Lab,
  target: string,
  n: number,
  opts: { maxMs?: number } = {},
): Promise<{ release(): Promise<LoadResult | null> }> {
  const maxMs = opts.maxMs ?? 120_000;
  const g = startLoadgen(lab, lab.cli, ['--tcp', target, '--flows', String(n), '--hold', '--max-ms', String(maxMs)], 'ready', maxMs + 5_000);
  await g.ready;
  return { release: g.stop };
}

/** Every `conntrack -S` counter of a namespace (drop, insert_failed, clash_resolve, ...), summed over CPUs. */
export function ctCounters(ns: string): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const m of run(['ip', 'netns', 'exec', ns, 'conntrack', '-S']).matchAll(/\b(\w+)=(\d+)/g)) sum[m[1]!] = (sum[m[1]!] ?? 0) + Number(m[2]);
  return sum;
}

/** Per-namespace conntrack stats: per-CPU counters summed, plus the entry count. */
export function ctStat(ns: string): { drop: number; earlyDrop: number; insertFailed: number; count: number } {
  const c = ctCounters(ns);
  const count = Number(run(['ip', 'netns', 'exec', ns, 'conntrack', '-C']).trim());
  return { drop: c.drop ?? 0, earlyDrop: c.early_drop ?? 0, insertFailed: c.insert_failed ?? 0, count };
}

/** Count `conntrack -L <filter>` entries in ns (the summary line goes to stderr, ignored). */
export function ctCount(ns: string, filter: string[]): number {
  // Count with wc so a full table (hundreds of MB of text) never lands in this process;
  // pipefail keeps a failing conntrack from reading as "0 entries".
  const script = 'conntrack -L "$@" 2>/dev/null | wc -l';
  return Number(run(['ip', 'netns', 'exec', ns, 'bash', '-o', 'pipefail', '-c', script, 'ctcount', ...filter]).trim());
}

// Stack of values to restore; the bottom one is the original, used by the exit hook.
const maxStack: string[] = [];
let maxHookInstalled = false;

/** Make sure nf_conntrack_max is put back even if the process exits mid-change. */
export function restoreConntrackMaxOnExit(): void {
  if (maxHookInstalled) return;
  maxHookInstalled = true;
  process.on('exit', () => {
    const original = maxStack[0];
    if (original !== undefined) {
      try { fs.writeFileSync(CONNTRACK_MAX, original); } catch { /* nothing more to do */ }
    }
  });
}

/** Set the (global) nf_conntrack_max to value while fn runs; always restores. */
export async function withConntrackMax<T>(value: number, fn: () => Promise<T> | T): Promise<T> {
  if (!Number.isInteger(value) || value < 1) throw new Error(`withConntrackMax: bad value ${value}`);
  restoreConntrackMaxOnExit();
  const old = fs.readFileSync(CONNTRACK_MAX, 'utf8').trim();
  maxStack.push(old);
  try {
    fs.writeFileSync(CONNTRACK_MAX, String(value));
    return await fn();
  } finally {
    fs.writeFileSync(CONNTRACK_MAX, old);
    maxStack.pop();
  }
}

export interface RoutedLab extends Lab {
  /** the namespace between cli and srv, forwarding both families */
  rtr: string;
  /** the srv side's addresses as the router sees its own link to it */
  rtrToSrv4: string;
  rtrToSrv6: string;
  /** the lab's `ct state new` rule counters in ns: packets that created an
   * entry, seen on prerouting and on output */
  newCounters(ns: string): { pre: number; out: number };
}

/**
 * Three namespaces in a line, cli - rtr - srv, two veth links and two
 * subnets per family; rtr routes between them and cli/srv route through it.
 * Conntrack is on (the counting rules) in all three, so a flow from cli to
 * srv is new in each: sent by cli, forwarded by rtr, received by srv.
 */
export function createRoutedLab(): RoutedLab {
  const base = claimLabPrefix();
  const cli = `${base}-cli`;
  const rtr = `${base}-rtr`;
  const srv = `${base}-srv`;
  const lab: RoutedLab = Object.assign(
    labShell([cli, rtr, srv], {
      cli, srv,
      cliAddr4: '198.18.1.1', srvAddr4: '198.18.2.1',
      cliAddr6: '2001:2:0:1::1', srvAddr6: '2001:2:0:2::1',
    }),
    {
      rtr,
      rtrToSrv4: '198.18.2.254', rtrToSrv6: '2001:2:0:2::fe',
      newCounters(ns: string) {
        const j = JSON.parse(run(['ip', 'netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', 'ctop_test'])) as {
          nftables: { rule?: { chain: string; expr: { counter?: { packets: number } }[] } }[];
        };
        const out = { pre: 0, out: 0 };
        for (const item of j.nftables) {
          const r = item.rule;
          if (!r) continue;
          const packets = r.expr.find((x) => x.counter)?.counter?.packets ?? 0;
          if (r.chain === 'pre') out.pre += packets;
          if (r.chain === 'out') out.out += packets;
        }
        return out;
      },
    },
  );
  const rtrToCli4 = '198.18.1.254';
  const rtrToCli6 = '2001:2:0:1::fe';
  try {
    run(['ip', 'netns', 'add', rtr]);
    run(['ip', 'netns', 'add', srv]);
    run(['ip', '-n', cli, 'link', 'add', 'ct0', 'type', 'veth', 'peer', 'name', 'ct0', 'netns', rtr]);
    run(['ip', '-n', srv, 'link', 'add', 'ct0', 'type', 'veth', 'peer', 'name', 'ct1', 'netns', rtr]);
    addressLink(cli, 'ct0', `${lab.cliAddr4}/24`, `${lab.cliAddr6}/64`);
    addressLink(rtr, 'ct0', `${rtrToCli4}/24`, `${rtrToCli6}/64`);
    addressLink(rtr, 'ct1', `${lab.rtrToSrv4}/24`, `${lab.rtrToSrv6}/64`);
    addressLink(srv, 'ct0', `${lab.srvAddr4}/24`, `${lab.srvAddr6}/64`);
    for (const ns of [cli, rtr, srv]) run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    lab.exec(rtr, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    run(['ip', '-n', cli, 'route', 'add', 'default', 'via', rtrToCli4]);
    run(['ip', '-n', cli, '-6', 'route', 'add', 'default', 'via', rtrToCli6]);
    run(['ip', '-n', srv, 'route', 'add', 'default', 'via', lab.rtrToSrv4]);
    run(['ip', '-n', srv, '-6', 'route', 'add', 'default', 'via', lab.rtrToSrv6]);
    staticNeighbours(cli, 'ct0', rtr, 'ct0', [rtrToCli4, rtrToCli6]);
    staticNeighbours(rtr, 'ct0', cli, 'ct0', [lab.cliAddr4, lab.cliAddr6]);
    staticNeighbours(rtr, 'ct1', srv, 'ct0', [lab.srvAddr4, lab.srvAddr6]);
    staticNeighbours(srv, 'ct0', rtr, 'ct1', [lab.rtrToSrv4, lab.rtrToSrv6]);
    for (const ns of [cli, rtr, srv]) lab.exec(ns, ['nft', '-f', '-'], { input: COUNTING_RULESET });
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}
