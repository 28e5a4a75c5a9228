/** Ports and ranges on the command line: every mistake is a usage error naming the spec. */
import { describe, expect, it } from 'vitest';
import { parsePortSpecs } from '../../src/notrack/portSpec.js';
import { CtopError } from '../../src/errors.js';

function err(specs: string[], proto?: 'udp' | 'tcp'): CtopError {
  try {
    parsePortSpecs(specs, proto, 'notrack apply');
  } catch (e) {
    return e as CtopError;
  }
  throw new Error(`no error for ${specs.join(' ')}`);
}

describe('parsePortSpecs', () => {
  it('reads ports, protocols and ranges; a bare port takes --proto, udp without it; repeats collapse', () => {
    expect(parsePortSpecs(['5000', 'tcp/80', 'udp/60000-60100', 'udp/5000'], undefined, 'x')).toEqual([
      { proto: 'udp', port: 5000, portEnd: 5000 },
      { proto: 'tcp', port: 80, portEnd: 80 },
      { proto: 'udp', port: 60000, portEnd: 60100 },
    ]);
    expect(parsePortSpecs(['53', '1-1'], 'tcp', 'x')).toEqual([
      { proto: 'tcp', port: 53, portEnd: 53 },
      { proto: 'tcp', port: 1, portEnd: 1 },
    ]);
    // the same port in two protocols is no overlap
    expect(parsePortSpecs(['udp/53', 'tcp/53'], undefined, 'x')).toHaveLength(2);
  });
  it('refuses reversed and empty ranges, ports outside 1-65535, overlaps, and a protocol that contradicts --proto: exit 2', () => {
    const cases: [string[], 'udp' | 'tcp' | undefined, RegExp][] = [
      [['udp/60100-60000'], undefined, /^notrack apply: 'udp\/60100-60000' is a reversed range \(60100 > 60000\)$/],
      [['udp/60000-'], undefined, /is an empty range/],
      [['udp/-60000'], undefined, /is an empty range/],
      [['0'], undefined, /'0' is not a port: 0 is outside 1-65535/],
      [['udp/65000-70000'], undefined, /70000 is outside 1-65535/],
      [['udp/'], undefined, /a port is missing/],
      [['sctp/5000'], undefined, /protocol sctp has no ports/],
      [['udp/60000-60100', 'udp/60050'], undefined, /udp\/60050 overlaps udp\/60000-60100/],
      [['udp/60000-60100', 'udp/60100-60200'], undefined, /overlaps/],
      [['udp/60000-60100'], 'tcp', /'udp\/60000-60100' names udp but --proto is tcp/],
      [[], undefined, /no port given/],
    ];
    for (const [specs, proto, message] of cases) {
      const e = err(specs, proto);
      expect(e).toBeInstanceOf(CtopError);
      expect(e.exitCode, specs.join(' ')).toBe(2);
      expect(e.message, specs.join(' ')).toMatch(message);
      expect(e.hint.length).toBeGreaterThan(0);
    }
  });
});
