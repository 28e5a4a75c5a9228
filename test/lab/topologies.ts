// The bridge lab for the NOTRACK topologies, shaped as a Lab (cli, srv, exec, spawn,
// netnsInode, destroy) so startServer/runLoad work unchanged, plus the middle namespace:
//
//   cli --veth--+          node holds bridge br0 with both pods' veths
//               node (br0) (one L2 segment 198.18.3.0/24, 2001:2:0:3::/64);
//   srv --veth--+          bridge-nf-call-ip(6)tables=1 sends bridged packets through
//                          node's IP hooks, as on a Kubernetes node (br_netfilter)
//
// Conntrack is enabled only in node (COUNTING_RULESET), so its table holds exactly the
// traffic passing through. The routed topology is createRoutedLab (./netns.ts).
import { COUNTING_RULESET, addressLink, claimLabPrefix, labShell, run, staticNeighbours, type Lab } from './netns.js';

export interface MiddleLab extends Lab {
  /** the namespace in the middle (router or bridge node), where conntrack runs */
  mid: string;
}

export function createBridgeLab(): MiddleLab {
  const prefix = claimLabPrefix();
  const [cli, node, srv] = [`${prefix}-cli`, `${prefix}-node`, `${prefix}-srv`];
  const lab: MiddleLab = Object.assign(
    labShell([cli, node, srv], { cli, srv, cliAddr4: '198.18.3.1', srvAddr4: '198.18.3.2', cliAddr6: '2001:2:0:3::1', srvAddr6: '2001:2:0:3::2' }),
    { mid: node },
  );
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
    for (const ns of [node, cli, srv]) run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    addressLink(cli, 'eth0', `${lab.cliAddr4}/24`, `${lab.cliAddr6}/64`);
    addressLink(srv, 'eth0', `${lab.srvAddr4}/24`, `${lab.srvAddr6}/64`);
    // br_netfilter: bridged IPv4/IPv6 packets pass the node's IP hooks (and its conntrack)
    lab.exec(node, ['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1', 'net.bridge.bridge-nf-call-ip6tables=1']);
    staticNeighbours(cli, 'eth0', srv, 'eth0', [lab.srvAddr4, lab.srvAddr6]);
    staticNeighbours(srv, 'eth0', cli, 'eth0', [lab.cliAddr4, lab.cliAddr6]);
    lab.exec(node, ['nft', '-f', '-'], { input: COUNTING_RULESET });
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}
