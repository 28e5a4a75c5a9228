/**
 * Up-front checks, before anything is loaded: privileges and kernel BTF.
 * Each failure names what is missing and what to do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { CtopError, ExitCode } from './errors.js';

/** Capability bits, include/uapi/linux/capability.h */
export const CAP = { NET_ADMIN: 12, SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;

export function effectiveCaps(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

function hasCap(caps: bigint, bit: number): boolean {
  return (caps & (1n << BigInt(bit))) !== 0n;
}

/**
 * What ctop needs: CAP_BPF to load programs (or CAP_SYS_ADMIN, as before 5.8),
 * CAP_PERFMON for the tracing program, CAP_NET_ADMIN for netfilter links and
 * CAP_SYS_ADMIN to enter other network namespaces with setns().
 */
export function missingCaps(caps: bigint): string[] {
  const missing: string[] = [];
  const admin = hasCap(caps, CAP.SYS_ADMIN);
  if (!hasCap(caps, CAP.BPF) && !admin) missing.push('CAP_BPF');
  if (!hasCap(caps, CAP.PERFMON) && !admin) missing.push('CAP_PERFMON');
  if (!hasCap(caps, CAP.NET_ADMIN)) missing.push('CAP_NET_ADMIN');
  if (!admin) missing.push('CAP_SYS_ADMIN');
  return missing;
}

export function checkPrivileges(caps = effectiveCaps()): void {
  const missing = missingCaps(caps);
  if (missing.length === 0) return;
  const who = process.getuid?.() === 0 ? 'this root process lacks' : 'ctop needs root; this process lacks';
  throw new CtopError(`${who} ${missing.join(', ')}`, 'run it as root: sudo ctop …', ExitCode.privileges);
}

/** Where the kernel publishes its BTF; CTOP_BTF_PATH overrides it for tests. */
export function btfPath(): string {
  return process.env.CTOP_BTF_PATH ?? '/sys/kernel/btf/vmlinux';
}

/** Why the BPF tiers cannot load, or undefined when BTF is there. */
export function btfProblem(): string | undefined {
  const p = btfPath();
  return existsSync(p) ? undefined : `this kernel exposes no BTF (${p} is missing; it needs CONFIG_DEBUG_INFO_BTF=y)`;
}
