/** The options of the commands that keep a background census (top, record, serve). */
import { Option, type Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { oneLine } from '../util/text.js';
import { DEFAULT_BUDGET_SHARE } from '../source/occupancy.js';

export interface OccupancyFlags {
  occupancy: string;
  censusBudget: string;
}

export interface OccupancySettings {
  /** how the background census counts; 'off' runs none */
  occupancy: 'auto' | 'ctnetlink' | 'off';
  /** CPU share of one core the census may use, 0..1 */
  budgetShare: number;
}

export function addOccupancyFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--occupancy <method>', 'who holds the table: a background census by the in-kernel hash walk (auto, falls back to ctnetlink), ctnetlink dumps, or off')
        .choices(['auto', 'ctnetlink', 'off'])
        .default('auto'),
    )
    .option('--census-budget <percent>', 'CPU the background census may use, percent of one core (0.1-50)', String(DEFAULT_BUDGET_SHARE * 100));
}

export function parseOccupancyFlags(f: OccupancyFlags): OccupancySettings {
  const text = f.censusBudget.trim().replace(/%$/, '');
  const pct = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(pct >= 0.1 && pct <= 50)) {
    throw new CtopError(`--census-budget: '${oneLine(f.censusBudget, 40)}' is not a percentage from 0.1 to 50`, 'e.g. --census-budget 2 (2 % of one core, the default)', ExitCode.usage);
  }
  return { occupancy: f.occupancy as OccupancySettings['occupancy'], budgetShare: pct / 100 };
}
