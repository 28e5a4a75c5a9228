#!/usr/bin/env node
// Bounded load generator for the ctop netns test lab (and later benchmarks).
// Runs INSIDE a network namespace:  ip netns exec NS node tools/loadgen.mjs ...
//
//   --udp HOST:PORT --flows N            N UDP flows, one socket + one datagram each
//         [--wait-reply-ms MS]           wait up to MS for each flow's answer (counts `replies`)
//         [--port-span N]                spread the flows over ports PORT..PORT+N-1, in turn
//   --tcp HOST:PORT --flows N [--hold]   N TCP connections (connect, write 1 byte, close)
//         --hold [--hold-ms MS]          keep them open; prints "ready" once all are up
//   --listen-udp P[,P..] --listen-tcp P[,P..]   dual-stack server on ::, prints "listening"
//         [--echo]                       answer each UDP datagram (a reply flows back)
//   --max-ms MS                          hard bound for every mode (60000; listen 120000)
//
// Ends with ONE JSON line on stdout. Exit 0 ok, 1 if any send/connect failed, 2 bad args.
// No dependencies on purpose: it must run with a bare `node` inside any namespace.
import dgram from 'node:dgram';
import net from 'node:net';
import fs from 'node:fs';

const MAX_FLOWS = 10_000_000;
const MAX_OPEN = 200; // sockets in flight at once: enough for speed, far below fd limits
const t0 = Date.now();

function usage(msg, hint) {
  // One line, no stack trace: callers show it verbatim.
  process.stderr.write(`loadgen: ${msg}${hint ? ` (hint: ${hint})` : ''}\n`);
  process.exit(2);
}

function intArg(name, v, min, max) {
  if (v === undefined || !/^\d+$/.test(v)) usage(`${name} needs a whole number, got ${JSON.stringify(v ?? '')}`, `e.g. ${name} 100`);
  const n = Number(v);
  if (n < min || n > max) usage(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function portList(name, v) {
  if (v === undefined) usage(`${name} needs a port or comma list of ports`, `e.g. ${name} 5000,5001`);
  return v.split(',').map((p) => intArg(name, p, 1, 65535));
}

// House rule: traffic only goes to the lab ranges, so refuse anything else here too.
function inTestRange(ip) {
  if (net.isIPv4(ip)) {
    const [a, b] = ip.split('.').map(Number);
    return a === 198 && (b === 18 || b === 19); // 198.18.0.0/15
  }
  // IPv6: compare the first 48 bits after expanding '::' (2001:0002:0000::/48).
  const parts = expand6(ip);
  return parts !== null && parts[0] === 0x2001 && parts[1] === 0x2 && parts[2] === 0;
}

function expand6(ip) {
  if (ip.includes('.')) return null; // embedded IPv4 forms are never lab addresses
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  if (ip.includes('::')) {
    const fill = 8 - h.length - t.length;
    if (fill < 0) return null;
    return [...h, ...Array(fill).fill('0'), ...t].map((x) => parseInt(x, 16));
  }
  return h.length === 8 ? h.map((x) => parseInt(x, 16)) : null;
}

function target(name, v) {
  if (v === undefined) usage(`${name} needs HOST:PORT`, `e.g. ${name} 198.18.0.2:5000 or ${name} [2001:2::2]:5000`);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:[\]]+):(\d+)$/.exec(v);
  if (!m) usage(`${name} ${JSON.stringify(v)} is not HOST:PORT`, 'IPv6 needs brackets: [2001:2::2]:5000');
  const host = m[1];
  const family = net.isIP(host);
  if (!family) usage(`${name} host ${JSON.stringify(host)} is not an IP literal`, 'no DNS; use an address');
  if (!inTestRange(host)) usage(`${name} host ${host} is outside the lab ranges`, 'use 198.18.0.0/15 or 2001:2::/48');
  return { host, port: intArg(name, m[2], 1, 65535), family };
}

function parse(argv) {
  const o = { hold: false, listenUdp: [], listenTcp: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => argv[++i];
    switch (a) {
      case '--udp': o.udp = target(a, val()); break;
      case '--tcp': o.tcp = target(a, val()); break;
      case '--flows': o.flows = intArg(a, val(), 1, MAX_FLOWS); break;
      case '--hold': o.hold = true; break;
      case '--echo': o.echo = true; break;
      case '--wait-reply-ms': o.waitReplyMs = intArg(a, val(), 1, 60_000); break;
      case '--port-span': o.portSpan = intArg(a, val(), 1, 65535); break;
      case '--hold-ms': o.holdMs = intArg(a, val(), 1, 86_400_000); break;
      case '--max-ms': o.maxMs = intArg(a, val(), 1, 86_400_000); break;
      case '--listen-udp': o.listenUdp.push(...portList(a, val())); break;
      case '--listen-tcp': o.listenTcp.push(...portList(a, val())); break;
      default: usage(`unknown argument ${JSON.stringify(a)}`, 'see the header of tools/loadgen.mjs');
    }
  }
  const listen = o.listenUdp.length + o.listenTcp.length > 0;
  const modes = [o.udp && '--udp', o.tcp && '--tcp', listen && '--listen-*'].filter(Boolean);
  if (modes.length !== 1) usage(modes.length ? `pick one mode, got ${modes.join(' and ')}` : 'no mode given', 'use --udp, --tcp or --listen-udp/--listen-tcp');
  if (!listen && o.flows === undefined) usage('--flows N is required with --udp/--tcp', 'e.g. --flows 100');
  if (listen && o.flows !== undefined) usage('--flows makes no sense with --listen-*');
  if ((o.hold || o.holdMs !== undefined) && !o.tcp) usage('--hold/--hold-ms only apply to --tcp');
  if (o.holdMs !== undefined && !o.hold) usage('--hold-ms needs --hold');
  if (o.echo && !listen) usage('--echo only applies to --listen-udp');
  if (o.waitReplyMs !== undefined && !o.udp) usage('--wait-reply-ms only applies to --udp');
  if (o.portSpan !== undefined && !o.udp) usage('--port-span only applies to --udp');
  if (o.portSpan !== undefined && o.udp.port + o.portSpan - 1 > 65535) usage(`--port-span ${o.portSpan} from port ${o.udp.port} passes 65535`);
  o.maxMs ??= listen ? 120_000 : 60_000;
  if (o.holdMs !== undefined && o.holdMs > o.maxMs) usage(`--hold-ms ${o.holdMs} exceeds --max-ms ${o.maxMs}`, 'raise --max-ms as well');
  o.mode = o.udp ? 'udp' : o.tcp ? 'tcp' : 'listen';
  return o;
}

// Refuse to run anywhere but a named lab namespace (fail closed): the current netns must
// be one of /run/netns/* (what `ip netns exec` enters) and not the initial netns, whose
// inode is fixed at 0xEFFFFFF9 on current kernels. /proc/1/ns/net is not a usable
// reference: it is often unreadable (hidepid, sandboxes).
const INIT_NET_INO = 0xeffffff9;
function checkInLabNetns() {
  const hint = 'run via: ip netns exec NS node tools/loadgen.mjs ...';
  let self;
  try { self = fs.statSync('/proc/self/ns/net'); } catch { usage('cannot stat /proc/self/ns/net', hint); }
  if (self.ino === INIT_NET_INO) usage('refusing to run in the initial network namespace', hint);
  let named = false;
  try {
    for (const n of fs.readdirSync('/run/netns')) {
      try {
        const st = fs.statSync(`/run/netns/${n}`);
        if (st.ino === self.ino && st.dev === self.dev) named = true;
      } catch { /* stale entry */ }
    }
  } catch { /* no /run/netns: not named */ }
  if (!named) usage('not inside a named network namespace', hint);
}

function finish(result, failed) {
  result.elapsedMs = Date.now() - t0;
  process.stdout.write(JSON.stringify(result) + '\n');
  // Exit only after stdout drained, so a piped caller always gets the JSON line.
  process.stdout.write('', () => process.exit(failed ? 1 : 0));
}

// Run `total` async jobs with at most MAX_OPEN in flight; stop launching at the deadline.
async function pool(total, deadline, job) {
  let next = 0;
  const worker = async () => {
    while (next < total && Date.now() < deadline) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(MAX_OPEN, total) }, worker));
  return next; // jobs started
}

// Closed UDP sockets free their port and the kernel picks ports at random, so two flows
// could share a source port (and a conntrack entry). Retry binds until the port is new;
// once the ephemeral range is nearly used up, start a fresh "epoch" (reuse is unavoidable).
const usedPorts = new Set();
const portRange = (() => {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return hi - lo + 1;
  } catch { return 28232; }
})();

function bindFresh(type) {
  return new Promise((resolve, reject) => {
    const attempt = (tries) => {
      const s = dgram.createSocket(type);
      s.once('error', (e) => { s.close(); reject(e); });
      s.bind(0, () => {
        const p = s.address().port;
        if (usedPorts.has(p) && tries < 50) { s.close(); attempt(tries + 1); return; }
        if (usedPorts.size >= portRange * 0.9) usedPorts.clear();
        usedPorts.add(p);
        s.removeAllListeners('error');
        resolve(s);
      });
    };
    attempt(0);
  });
}

async function runUdp(o) {
  const { host, port, family } = o.udp;
  const deadline = t0 + o.maxMs;
  const r = { mode: 'udp', flows: o.flows, sent: 0, errors: 0, ...(o.waitReplyMs !== undefined ? { replies: 0 } : {}) };
  const payload = Buffer.from('x');
  const started = await pool(o.flows, deadline, async (i) => {
    let s;
    const to = port + (o.portSpan ? i % o.portSpan : 0);
    try {
      s = await bindFresh(family === 6 ? 'udp6' : 'udp4');
      const answered = o.waitReplyMs === undefined ? null : new Promise((res) => {
        const t = setTimeout(() => res(false), o.waitReplyMs);
        s.once('message', () => { clearTimeout(t); res(true); });
      });
      await new Promise((res, rej) => s.send(payload, to, host, (e) => (e ? rej(e) : res())));
      r.sent++;
      if (answered && (await answered)) r.replies++;
    } catch (e) {
      r.errors++;
      r.firstError ??= e.code ?? String(e.message);
    } finally {
      try { s?.close(); } catch { /* already closed */ }
    }
  });
  if (started < o.flows || Date.now() >= deadline) r.timedOut = true;
  finish(r, r.errors > 0 || r.sent < o.flows);
}

async function runTcp(o) {
  const { host, port } = o.tcp;
  const deadline = t0 + o.maxMs;
  const r = { mode: o.hold ? 'tcp-hold' : 'tcp', flows: o.flows, established: 0, sent: 0, errors: 0 };
  const held = [];
  const live = new Set(); // everything not yet closed, destroyed at the deadline
  const killAll = () => { for (const s of live) s.destroy(); };
  const guard = setTimeout(killAll, Math.max(0, deadline - Date.now()));

  const started = await pool(o.flows, deadline, () => new Promise((resolve) => {
    const s = net.connect({ host, port });
    live.add(s);
    s.on('error', (e) => { r.errors++; r.firstError ??= e.code ?? String(e.message); });
    s.once('connect', () => {
      r.established++;
      s.write('x', (e) => { if (!e) r.sent++; });
      if (o.hold) { held.push(s); resolve(); return; } // stay open, free the slot
      s.end(); // the server answers our FIN with its own; 'close' follows
    });
    s.once('close', () => { live.delete(s); resolve(); });
  }));
  if (started < o.flows || Date.now() >= deadline) r.timedOut = true;

  const allUp = r.established === o.flows && r.errors === 0;
  if (!o.hold || !allUp) {
    clearTimeout(guard);
    killAll();
    finish(r, !allUp || r.sent < o.flows);
    return;
  }
  // Holding: tell the caller, then wait for a signal, --hold-ms or the --max-ms deadline.
  process.stdout.write('ready\n');
  clearTimeout(guard);
  const holdEnd = Math.min(deadline, o.holdMs !== undefined ? Date.now() + o.holdMs : deadline);
  await new Promise((resolve) => {
    const t = setTimeout(() => { r.holdEnded = 'timeout'; resolve(); }, Math.max(0, holdEnd - Date.now()));
    for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => { clearTimeout(t); r.holdEnded = sig; resolve(); });
  });
  // Count connections that died while held (server gone, RST) as failures.
  r.stillOpen = held.filter((s) => !s.destroyed).length;
  for (const s of held) s.destroy();
  finish(r, r.stillOpen < o.flows || r.errors > 0);
}

async function runListen(o) {
  const r = { mode: 'listen', udpPorts: o.listenUdp, tcpPorts: o.listenTcp, received: 0, accepted: 0, bytes: 0, errors: 0 };
  const closers = [];
  const conns = new Set();
  const fail = (what, e) => {
    process.stderr.write(`loadgen: ${what}: ${e.code ?? e.message}\n`);
    r.errors++;
    r.firstError ??= e.code ?? String(e.message);
    stop(true);
  };
  let stopped = false;
  const stop = (failed) => {
    if (stopped) return;
    stopped = true;
    for (const c of closers) c();
    for (const c of conns) c.destroy();
    finish(r, failed);
  };
  // ipv6Only:false on :: gives one dual-stack socket for both IPv4 and IPv6.
  const binds = [
    ...o.listenUdp.map((port) => new Promise((res) => {
      const s = dgram.createSocket({ type: 'udp6', ipv6Only: false });
      s.on('error', (e) => fail(`udp ${port}`, e));
      s.on('message', (m, from) => {
        r.received++;
        r.bytes += m.length;
        if (o.echo) s.send(m, from.port, from.address, () => {});
      });
      s.bind(port, '::', res);
      closers.push(() => s.close());
    })),
    ...o.listenTcp.map((port) => new Promise((res) => {
      const srv = net.createServer((c) => {
        r.accepted++;
        conns.add(c);
        c.on('data', (d) => { r.bytes += d.length; });
        c.on('end', () => c.end()); // close our side so the client's close completes
        c.on('error', () => {}); // peer resets are normal at shutdown
        c.on('close', () => conns.delete(c));
      });
      srv.on('error', (e) => fail(`tcp ${port}`, e));
      srv.listen({ port, host: '::', ipv6Only: false, backlog: 4096 }, res);
      closers.push(() => srv.close());
    })),
  ];
  // This timer also keeps the process alive until a signal or --max-ms ends it.
  setTimeout(() => stop(false), Math.max(0, t0 + o.maxMs - Date.now()));
  for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => stop(false));
  await Promise.all(binds);
  if (!stopped) process.stdout.write('listening\n');
}

const opts = parse(process.argv.slice(2));
checkInLabNetns();
process.on('uncaughtException', (e) => {
  // Last resort: still emit the JSON line so callers can parse something.
  process.stderr.write(`loadgen: ${e.message}\n`);
  finish({ mode: opts.mode, errors: 1, firstError: e.code ?? e.message }, true);
});
if (opts.mode === 'udp') await runUdp(opts);
else if (opts.mode === 'tcp') await runTcp(opts);
else await runListen(opts);
