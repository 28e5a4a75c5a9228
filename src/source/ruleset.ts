/**
 * Gathers the inputs of the ruleset readers (model/rulesetNft.ts, model/rulesetIptables.ts): `nft -j list ruleset` and, only where
 * legacy tables are already loaded, `iptables-legacy-save` /
 * `ip6tables-legacy-save`. Never throws; what could not be read goes to
 * `errors`.
 *
 * Why these commands: listing nf_tables and dumping already-loaded legacy
 * tables instantiates nothing. `iptables -L` (or a save of a table that is not
 * loaded) can load a table module and register its hooks, which is exactly
 * what a doctor must not do.
 */
import { statSync } from 'node:fs';
import { describeError } from '../errors.js';
import type { RulesetReading } from '../model/ruleset.js';
import { analyzeIptablesSave, iptablesBaseChains } from '../model/rulesetIptables.js';
import { analyzeNftJson, nftBaseChains } from '../model/rulesetNft.js';
import { nsExec } from '../util/nsExec.js';


const TIMEOUT_MS = 5000;

/** Runs cmd (inside netnsPath via nsenter when given) and returns its stdout. */
function run(cmd: string, args: string[], netnsPath?: string): string {
  return nsExec(cmd, args, { netnsPath, timeoutMs: TIMEOUT_MS });
}

/**
 * Legacy iptables tables loaded in the namespace. /proc/net/* shows the
 * reader's own netns, hence `cat` through nsenter for another namespace.
 * A missing file means ip_tables is not even loaded: nothing to report.
 */
function legacyTables(procFile: string, netnsPath?: string): string[] {
  let text: string;
  try {
    text = run('cat', [procFile], netnsPath);
  } catch (e) {
    if (/No such file/.test(describeError(e))) return [];
    throw e;
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

function readNft(netnsPath: string | undefined, out: RulesetReading): void {
  try {
    const stdout = run('nft', ['-j', 'list', 'ruleset'], netnsPath);
    // Some nft builds print nothing at all for an empty ruleset.
    const json: unknown = stdout.trim() === '' ? { nftables: [] } : JSON.parse(stdout);
    out.users.push(...analyzeNftJson(json));
    out.chains.push(...nftBaseChains(json));
    out.sources.push('nft -j list ruleset');
  } catch (e) {
    out.errors.push(e instanceof SyntaxError ? `nft -j list ruleset: unparsable JSON (${e.message})` : describeError(e));
  }
}

function readLegacy(
  procFile: string,
  saveCmd: 'iptables-legacy-save' | 'ip6tables-legacy-save',
  source: 'iptables-legacy' | 'ip6tables-legacy',
  netnsPath: string | undefined,
  out: RulesetReading,
): void {
  try {
    const tables = legacyTables(procFile, netnsPath);
    if (tables.length === 0) return;
    const text = run(saveCmd, [], netnsPath);
    out.users.push(...analyzeIptablesSave(text, source));
    out.chains.push(...iptablesBaseChains(text, source));
    out.sources.push(`${saveCmd} (tables ${tables.join(',')})`);
  } catch (e) {
    out.errors.push(describeError(e));
  }
}

/** Reads the current (or netnsPath's) ruleset and lists what keeps conntrack on. */
export function readRuleset(netnsPath?: string): RulesetReading {
  const out: RulesetReading = { users: [], chains: [], sources: [], errors: [] };
  if (netnsPath !== undefined) {
    try {
      statSync(netnsPath);
    } catch (e) {
      out.errors.push(`cannot open network namespace ${netnsPath}: ${describeError(e)}`);
      return out;
    }
  }
  readNft(netnsPath, out);
  readLegacy('/proc/net/ip_tables_names', 'iptables-legacy-save', 'iptables-legacy', netnsPath, out);
  readLegacy('/proc/net/ip6_tables_names', 'ip6tables-legacy-save', 'ip6tables-legacy', netnsPath, out);
  return out;
}
