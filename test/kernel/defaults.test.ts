/**
 * One definition of the map sizes: bpf/ctop.h's CTOP_DEFAULT_MAX_* (the
 * kernel object's declared sizes and the loader's defaults), exported by the
 * addon, are what the command line offers as --max-* defaults.
 */
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native/addon.js';
import { MAP_SIZES } from '../../src/commands/options.js';

describe('map size defaults', () => {
  it('the command line defaults are bpf/ctop.h\'s', () => {
    const d = loadAddon().mapDefaults;
    expect({ maxPorts: MAP_SIZES.maxPorts.dflt, maxTuples: MAP_SIZES.maxTuples.dflt, maxDropTuples: MAP_SIZES.maxDropTuples.dflt }).toEqual(d);
    expect(d).toEqual({ maxPorts: 8192, maxTuples: 16384, maxDropTuples: 4096 });
  });
});
