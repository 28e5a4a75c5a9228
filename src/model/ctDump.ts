/**
 * A census from `conntrack -L` text (the conntrack-tools view of a
 * ctnetlink dump): entries per (protocol, original destination port) and the
 * remaining timeout of each TCP entry by state. Pure: no I/O.
 *
 * Line shape (conntrack-tools 1.4):
 *   tcp      6 431999 ESTABLISHED src=A dst=B sport=S dport=D src=B dst=A sport=D dport=S [ASSURED] mark=0 use=1
 *   udp      17 29 src=A dst=B sport=S dport=D [UNREPLIED] src=B dst=A sport=D dport=S mark=0 use=1
 * The third field is the seconds left before the entry expires; the first
 * dport= is the original direction's destination port.
 */
import type { PortCensus } from '../advise/notrack.js';
import type { LingeringState } from '../advise/sizing.js';

export interface CtDumpCensus extends PortCensus {
  remainingByState: Partial<Record<LingeringState, number[]>>;
}

const STATE_KEYS: Record<string, LingeringState> = {
  ESTABLISHED: 'established',
  TIME_WAIT: 'time_wait',
  CLOSE_WAIT: 'close_wait',
  FIN_WAIT: 'fin_wait',
};

export function parseConntrackList(text: string, source = 'conntrack -L (ctnetlink dump)'): CtDumpCensus {
  const byPort: Record<string, number> = {};
  const remainingByState: CtDumpCensus['remainingByState'] = {};
  let total = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[1] ?? '') || !/^\d+$/.test(f[2] ?? '')) continue;
    total++;
    const proto = f[0]!;
    const dport = f.find((x) => x.startsWith('dport='));
    if (dport) {
      const key = `${proto}/${dport.slice(6)}`;
      byPort[key] = (byPort[key] ?? 0) + 1;
    }
    const state = proto === 'tcp' ? STATE_KEYS[f[3]!] : undefined;
    if (state) (remainingByState[state] ??= []).push(Number(f[2]));
  }
  return { source, total, byPort, remainingByState };
}
