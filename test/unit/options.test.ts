/** The shared options: each flag's check runs as commander parses it, with the range its help states, and a bad value is a usage error. */
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { addOccupancyOptions, addProbeOptions, durationFlag, MAP_SIZES, occupancySettings, probeSettings, topOption } from '../../src/commands/options.js';

/** A command with the given options, its action keeping what it receives; throws what parsing throws. */
function parse<T = Record<string, unknown>>(add: (c: Command) => Command, argv: string[]): T {
  let got = {} as T;
  const program = new Command('ctop').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  add(program.command('x')).action((f: T) => {
    got = f;
  });
  program.parse(['x', ...argv], { from: 'user' });
  return got;
}

const usage = (flag: string) => expect.objectContaining({ exitCode: 2, message: expect.stringMatching(new RegExp(`^${flag}: `)) });

describe('shared options', () => {
  it('--census-budget takes a percentage of one core; anything else is a usage error', () => {
    const occ = (argv: string[]) => occupancySettings(parse<Parameters<typeof occupancySettings>[0]>(addOccupancyOptions, argv));
    expect(occ([])).toEqual({ occupancy: 'auto', budgetShare: 0.02 });
    expect(occ(['--census-budget', '2'])).toEqual({ occupancy: 'auto', budgetShare: 0.02 });
    expect(occ(['--occupancy', 'off', '--census-budget', '0.5%'])).toEqual({ occupancy: 'off', budgetShare: 0.005 });
    for (const bad of ['0', '51', 'abc', '-1', '']) expect(() => occ(['--census-budget', bad])).toThrow(usage('--census-budget'));
  });

  it('the probe options: map sizes checked to the range their help states, defaults from one table', () => {
    const probe = (argv: string[]) => probeSettings(parse<Parameters<typeof probeSettings>[0]>(addProbeOptions, argv));
    expect(probe([])).toEqual({ netns: undefined, tier: 'auto', maxPorts: 8192, maxTuples: 16384, maxDropTuples: 4096 });
    expect(probe(['--max-ports', '1024', '--tier', 'netfilter', '--netns', 'lab'])).toMatchObject({ netns: 'lab', tier: 'netfilter', maxPorts: 1024 });
    expect(() => probe(['--max-ports', '1023'])).toThrow(usage('--max-ports'));
    expect(() => probe(['--max-tuples', String(MAP_SIZES.maxTuples.max + 1)])).toThrow(usage('--max-tuples'));
    expect(() => probe(['--max-drop-tuples', 'many'])).toThrow(usage('--max-drop-tuples'));
    const help = addProbeOptions(new Command('x')).helpInformation().replace(/\s+/g, ' ');
    for (const m of Object.values(MAP_SIZES)) expect(help).toContain(`(${m.min}-${m.max}) (default: "${m.dflt}")`);
  });

  it('durations and counts reach the action checked and in their units; the default is shown as written', () => {
    const add = (c: Command) => c.addOption(durationFlag('length of the window', '5s', { minMs: 100, maxMs: 60_000 })).addOption(topOption('rows', '20', { min: 0, max: 100 }));
    expect(parse(add, [])).toEqual({ duration: 5000, top: 20 });
    expect(parse(add, ['-d', '500ms', '--top', '0'])).toEqual({ duration: 500, top: 0 });
    expect(() => parse(add, ['--duration', 'soon'])).toThrow(usage('--duration'));
    expect(() => parse(add, ['-d', '2m'])).toThrow(usage('--duration'));
    expect(() => parse(add, ['--top', '101'])).toThrow(usage('--top'));
    expect(add(new Command('x')).helpInformation()).toMatch(/-d, --duration <time> +length of the window \(default: "5s"\)/);
  });
});
