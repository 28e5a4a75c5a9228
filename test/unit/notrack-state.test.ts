/** The pure checks behind notrack's state: which backup text root may load, and the state directory rules. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isOwnTableListing } from '../../src/notrack/nft.js';
import { makeBackup, openStateDir, readVerifiedBackup } from '../../src/notrack/state.js';

const LISTING = 'table inet ctop_notrack {\n\tchain pre {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\t\tudp dport 5000 counter packets 0 bytes 0 notrack comment "ctop server udp/5000 dport {x}"\n\t}\n}\n';

describe('isOwnTableListing', () => {
  it("accepts nft's listing of ctop's table, braces in comments included", () => {
    expect(isOwnTableListing(LISTING)).toBe(true);
  });
  it('refuses anything that reaches outside the table', () => {
    expect(isOwnTableListing(`${LISTING}flush ruleset\n`)).toBe(false);
    expect(isOwnTableListing('table inet ctop_notrack {\n\tchain c {\n\t}; }; flush ruleset; table inet x {\n}\n')).toBe(false);
    expect(isOwnTableListing('table inet other {\n}\n')).toBe(false);
    expect(isOwnTableListing('flush ruleset\ntable inet ctop_notrack {\n}\n')).toBe(false);
    expect(isOwnTableListing('table inet ctop_notrack {\n\tchain c { # }\n\t}\n}\nflush ruleset\n')).toBe(false);
    expect(isOwnTableListing('table inet ctop_notrack {\n')).toBe(false);
  });
});

describe('state directory and backup', () => {
  const base = mkdtempSync(join(tmpdir(), 'ctop-state-unit-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('creates a missing directory 0700 and refuses group/world-writable ones and links', () => {
    const d = join(base, 'a', 'b');
    openStateDir(d);
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o775);
    expect(() => openStateDir(open)).toThrow(/is writable by group or others \(mode 775\)/);
    symlinkSync(d, join(base, 'link'));
    expect(() => openStateDir(join(base, 'link'))).toThrow(/is a symbolic link/);
  });

  it('loads a backup only when its checksum holds and it is only ctop\'s table', () => {
    const f = join(base, 'b.json');
    writeFileSync(f, JSON.stringify(makeBackup(LISTING)));
    expect(readVerifiedBackup(f)?.table).toBe(LISTING);
    expect(() => readVerifiedBackup(f, 'ff'.repeat(32))).toThrow(/does not match its checksum/);
    writeFileSync(f, JSON.stringify({ ...makeBackup(LISTING), table: `${LISTING}flush ruleset\n` }));
    expect(() => readVerifiedBackup(f)).toThrow(/does not match its checksum/);
    writeFileSync(f, JSON.stringify(makeBackup(`${LISTING}flush ruleset\n`)));
    expect(() => readVerifiedBackup(f)).toThrow(/holds more than ctop's table/);
    writeFileSync(f, '{"table": "tab');
    expect(() => readVerifiedBackup(f)).toThrow(/is not valid JSON/);
    expect(readVerifiedBackup(join(base, 'absent.json'))).toBeNull();
    symlinkSync(join(base, 'absent.json'), join(base, 'l.json'));
    expect(() => readVerifiedBackup(join(base, 'l.json'))).toThrow(/symbolic link/);
  });
});
