// Three-namespace labs for the NOTRACK topologies, shaped as a Lab (cli, srv, exec, spawn,
// netnsInode, destroy) so startServer/runLoad work unchanged, plus the middle namespace:
//
//   router:  cli --veth-- rtr --veth-- srv   rtr routes (ip_forward, IPv6 forwarding) between
//            198.18.1.0/24 (2001:2:0:1::/64) and 198.18.2.0/24 (2001:2:0:2::/64)
//   bridge:  cli --veth--+                   node holds bridge br0 with both pods' veths
//                        node (br0)          (one L2 segment 198.18.3.0/24, 2001:2:0:3::/64);
//            srv --veth--+                   bridge-nf-call-ip(6)tables=1 sends bridged
//                                            packets through node's IP hooks, as on a
//                                            Kubernetes node (br_netfilter)
//
// Conntrack is enabled only in the middle namespace (the same counting-only ruleset as
// createLab's srv), so its table holds exactly the traffic passing through.
import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import fs from 'node:fs';
import { claimLabPrefix, deleteNetns, run, trackLab, type ExecOpts, type Lab } from './netns.js';

const CT_RULESET =
  'table inet ctop_test {\n' +
  '  chain pre { type filter hook prerouting priority 0; ct state new counter; }\n' +
  '  chain out { type filter hook output priority 0; ct state new counter; }\n' +
  '}\n';

export interface MiddleLab extends Lab {
  /** the namespace in the middle (router or bridge node), where conntrack runs */
  mid: string;
}

function base(prefix: string, names: string[], addrs: { cli4: string; srv4: string; cli6: string; srv6: string }): { lab: MiddleLab; untrack: () => void } {
  const children = new Set<ChildProcess>();
  let destroyed = false;
  let untrack = () => {};
  const lab: MiddleLab = {
    cli: `${prefix}-cli`,
    srv: `${prefix}-srv`,
    mid: names[1]!,
    cliAddr4: addrs.cli4,
    srvAddr4: addrs.srv4,
    cliAddr6: addrs.cli6,
    srvAddr6: addrs.srv6,
    exec: (ns: string, argv: string[], o?: ExecOpts) => run(['ip', 'netns', 'exec', ns, ...argv], o),
    spawn(ns, argv) {
      const child = spawnChild('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    netnsInode: (ns) => fs.statSync(`/run/netns/${ns}`).ino,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      untrack();
      for (const c of children) {
        try { c.kill('SIGKILL'); } catch { /* gone */ }
      }
      for (const n of names) deleteNetns(n);
    },
  };
  untrack = trackLab(lab);
  return { lab, untrack };
}

function mac(ns: string, dev: string): string {
  return (JSON.parse(run(['ip', '-n', ns, '-j', 'link', 'show', 'dev', dev])) as { address: string }[])[0]!.address;
}

function up(ns: string, addr4: string, addr6: string, dev: string): void {
  run(['ip', '-n', ns, 'addr', 'add', addr4, 'dev', dev]);
  run(['ip', '-n', ns, 'addr', 'add', addr6, 'dev', dev, 'nodad']);
  run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
}

/** Static neighbour entries: no ARP/ND delay, so the first datagrams are not held back. */
function neigh(ns: string, dev: string, peerNs: string, peerDev: string, addrs: string[]): void {
  const ll = mac(peerNs, peerDev);
  for (const a of addrs) run(['ip', '-n', ns, 'neigh', 'replace', a, 'lladdr', ll, 'dev', dev, 'nud', 'permanent']);
}

export function createBridgeLab(): MiddleLab {
  const prefix = claimLabPrefix();
  const [cli, node, srv] = [`${prefix}-cli`, `${prefix}-node`, `${prefix}-srv`];
  const { lab } = base(prefix, [cli, node, srv], { cli4: '198.18.3.1', srv4: '198.18.3.2', cli6: '2001:2:0:3::1', srv6: '2001:2:0:3::2' });
  try {
    run(['ip', 'netns', 'add', node]);
    run(['ip', 'netns', 'add', srv]);
    run(['ip', '-n', node, 'link', 'add', 'br0', 'type', 'bridge']);
    run(['ip', '-n', cli, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vcli', 'netns', node]);
    run(['ip', '-n', srv, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vsrv', 'netns', node]);
    for (const dev of ['vcli', 'vsrv']) {
      run(['ip', '-n', node, 'link', 'set', dev, 'master', 'br0']);
      run(['ip', '-n', node, 'link', 'set', dev, 'up']);
    }
    run(['ip', '-n', node, 'link', 'set', 'br0', 'up']);
    run(['ip', '-n', node, 'link', 'set', 'lo', 'up']);
    up(cli, '198.18.3.1/24', '2001:2:0:3::1/64', 'eth0');
    up(srv, '198.18.3.2/24', '2001:2:0:3::2/64', 'eth0');
    // br_netfilter: bridged IPv4/IPv6 packets pass the node's IP hooks (and its conntrack)
    lab.exec(node, ['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1', 'net.bridge.bridge-nf-call-ip6tables=1']);
    neigh(cli, 'eth0', srv, 'eth0', ['198.18.3.2', '2001:2:0:3::2']);
    neigh(srv, 'eth0', cli, 'eth0', ['198.18.3.1', '2001:2:0:3::1']);
    lab.exec(node, ['nft', '-f', '-'], { input: CT_RULESET });
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}
