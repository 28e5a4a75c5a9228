/**
 * The doctor report (`ctop doctor --json`, schema ctop.doctor/v1): what this
 * kernel offers, which probes attached, whether conntrack is active in each
 * namespace and which rules keep it on. Pure: built from what the command
 * read (a sample, each namespace's ruleset, kernel facts).
 */
import { keepsConntrackOn, type ConntrackUser, type RulesetReading } from './ruleset.js';
import type { ProbeInfo, Sample } from './sample.js';

export interface DoctorNamespace {
  inode: number;
  name: string;
  entries: number;
  /** entries, or any conntrack statistic above zero */
  busy: boolean;
  keepsConntrackOn: boolean;
  users: ConntrackUser[];
  rulesetErrors: string[];
}

export interface DoctorReport {
  schema: 'ctop.doctor/v1';
  host: string;
  kernel: { release: string; btf: string | null; lockdown: string | null };
  probe: ProbeInfo;
  sysctl: { max: number; buckets: number };
  conntrackActive: boolean;
  namespaces: DoctorNamespace[];
  notWatched: { name: string; error: string }[];
}

export interface DoctorInput {
  sample: Sample;
  /** each watched namespace's ruleset, by inode */
  rulesets: ReadonlyMap<number, RulesetReading>;
  host: string;
  kernel: DoctorReport['kernel'];
}

export function doctorReport(i: DoctorInput): DoctorReport {
  const s = i.sample;
  const namespaces: DoctorNamespace[] = s.namespaces.map((n) => {
    const rs = i.rulesets.get(n.inode) ?? { users: [], chains: [], sources: [], errors: ['namespace vanished'] };
    return {
      inode: n.inode,
      name: n.name,
      entries: n.count,
      busy: n.count > 0 || Object.values(n.stats).some((v) => v > 0),
      keepsConntrackOn: keepsConntrackOn(rs.users),
      users: rs.users,
      rulesetErrors: rs.errors,
    };
  });
  return {
    schema: 'ctop.doctor/v1',
    host: i.host,
    kernel: i.kernel,
    probe: s.probe,
    sysctl: { max: s.max, buckets: s.buckets },
    conntrackActive: namespaces.some((n) => n.busy || n.keepsConntrackOn),
    namespaces,
    notWatched: s.netnsErrors,
  };
}
