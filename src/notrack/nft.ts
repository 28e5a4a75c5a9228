/**
 * nft I/O for ctop's own table: check a script (`nft -c -f -`), load it
 * atomically (`nft -f -` commits the whole file or nothing), read the table
 * for a backup. Never `flush ruleset`, never another table.
 */
import { CtopError, ExitCode } from '../errors.js';
import { CTOP_TABLE, CTOP_TABLE_FAMILY, nftRevertScript } from '../advise/rules.js';
import { NsExecError, nsExec } from '../util/nsExec.js';

function nftError(what: string, e: unknown): CtopError {
  const msg = e instanceof NsExecError ? (e.stderr.split('\n').find((l) => /Error/.test(l)) ?? e.message) : String(e);
  return new CtopError(`${what}: ${msg.trim()}`, 'ctop needs nft (nftables >= 0.9) and CAP_NET_ADMIN; run with --verbose for nft\'s full output', ExitCode.failure, e instanceof NsExecError ? e.stderr : undefined);
}

export function nftCheck(script: string, netnsPath?: string): void {
  try {
    nsExec('nft', ['-c', '-f', '-'], { netnsPath, input: script });
  } catch (e) {
    throw nftError('nft -c rejected the script', e);
  }
}

export function nftLoad(script: string, netnsPath?: string): void {
  try {
    nsExec('nft', ['-f', '-'], { netnsPath, input: script });
  } catch (e) {
    throw nftError('nft -f failed (nothing was changed: the transaction is all or nothing)', e);
  }
}

/** `nft [-j] list table inet ctop_notrack`, or null when the table does not exist. */
function listOwn(options: string[], netnsPath?: string): string | null {
  const argv = [...options, 'list', 'table', CTOP_TABLE_FAMILY, CTOP_TABLE];
  try {
    return nsExec('nft', argv, { netnsPath });
  } catch (e) {
    if (e instanceof NsExecError && /No such file or directory/.test(e.stderr)) return null;
    throw nftError(`nft ${[...options, 'list table'].join(' ')} failed`, e);
  }
}

/** ctop's table as `nft list table` prints it (what a backup holds), or null when absent. */
export function listOwnTable(netnsPath?: string): string | null {
  return listOwn([], netnsPath);
}

/** ctop's table with counters, as nft JSON (for validate); null when absent. */
export function listOwnTableJson(netnsPath?: string): unknown {
  const text = listOwn(['-j'], netnsPath);
  return text === null ? null : (JSON.parse(text) as unknown);
}

/**
 * The script that puts ctop's table back as the backup has it: removed when
 * it did not exist, otherwise redefined from the listing, in one transaction.
 */
export function restoreScript(backup: string | null): string {
  return backup === null ? nftRevertScript() : `${nftRevertScript()}${backup.endsWith('\n') ? backup : `${backup}\n`}`;
}

/**
 * True when `text` is one `table inet ctop_notrack { ... }` block and nothing
 * else: braces balanced outside quoted strings and comments, the block closed
 * only at the end. A backup that would also touch another table (`}` then
 * `flush ruleset`, say) is not loaded.
 */
export function isOwnTableListing(text: string): boolean {
  const head = new RegExp(`^\\s*table\\s+${CTOP_TABLE_FAMILY}\\s+${CTOP_TABLE}\\s*\\{`);
  const m = head.exec(text);
  if (!m) return false;
  let depth = 1;
  let i = m[0].length;
  for (; i < text.length && depth > 0; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '{') depth++;
    else if (ch === '}') depth--;
  }
  return depth === 0 && text.slice(i).trim() === '';
}

/** A listing without counter values, which traffic changes between two listings. */
function withoutCounts(table: string | null): string | null {
  return table === null ? null : table.replace(/counter packets \d+ bytes \d+/g, 'counter').trim();
}

/** Whether ctop's table in the kernel is now as `expected` (null: absent), counters aside. */
export function ownTableIs(expected: string | null, netnsPath?: string): boolean {
  return withoutCounts(listOwnTable(netnsPath)) === withoutCounts(expected);
}

/**
 * Delete the rules of these targets ("udp/5000", "udp/60000-60100", as
 * ruleComment writes them) from ctop's table in one transaction; returns the
 * targets that had rules.
 */
export function deleteOwnRules(ports: string[], netnsPath?: string): string[] {
  const items = ((listOwnTableJson(netnsPath) as { nftables?: unknown[] } | null)?.nftables ?? []) as { rule?: { chain: string; handle: number; comment?: string } }[];
  const found = new Set<string>();
  const lines: string[] = [];
  for (const { rule } of items) {
    if (!rule?.comment) continue;
    const port = ports.find((p) => rule.comment!.startsWith(`ctop ${p} `));
    if (port === undefined) continue;
    found.add(port);
    lines.push(`delete rule ${CTOP_TABLE_FAMILY} ${CTOP_TABLE} ${rule.chain} handle ${rule.handle}`);
  }
  if (lines.length > 0) nftLoad(`${lines.join('\n')}\n`, netnsPath);
  return ports.filter((p) => found.has(p));
}
