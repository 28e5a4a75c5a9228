import { describe, expect, it } from 'vitest';
import { CAP, effectiveCaps, missingCaps } from '../../src/preflight.js';

const bit = (n: number): bigint => 1n << BigInt(n);

describe('privilege checks', () => {
  it('reads CapEff from /proc/self/status text', () => {
    expect(effectiveCaps('Name:\tx\nCapEff:\t000001ffffffffff\n')).toBe(0x1ffffffffffn);
    expect(effectiveCaps('Name:\tx\n')).toBe(0n);
  });

  it('full root needs nothing', () => {
    expect(missingCaps(0x1ffffffffffn)).toEqual([]);
  });

  it('names each missing capability', () => {
    expect(missingCaps(0n)).toEqual(['CAP_BPF', 'CAP_PERFMON', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
    expect(missingCaps(bit(CAP.BPF) | bit(CAP.NET_ADMIN) | bit(CAP.SYS_ADMIN))).toEqual([]);
    expect(missingCaps(bit(CAP.BPF) | bit(CAP.PERFMON) | bit(CAP.NET_ADMIN))).toEqual(['CAP_SYS_ADMIN']);
  });
});
