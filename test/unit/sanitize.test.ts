/**
 * Hostile text: escapes in names other users control must not reach root's
 * terminal, names put in a suggested command must stay one shell word, CSV
 * cells must not be formulas, and views must not crash on many rows.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanText, csvCell, shellQuote } from '../../src/util/sanitize.js';
import { formatTable } from '../../src/format/table.js';
import { formatDiff } from '../../src/format/diffText.js';
import { diffSummaries } from '../../src/model/diff.js';
import { summarize } from '../../src/model/series.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { portsCsv } from '../../src/export/csv.js';
import { clean, fit } from '../../src/tui/text.js';
import { makeSnapshots } from './recordingFixture.js';

// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const HOSTILE = '\x1b]0;PWN\x07\x1b[2J\x9b31m\u202eevil\r\nforged line';

describe('cleanText', () => {
  it('makes every terminal control visible and keeps the text one line', () => {
    const c = cleanText(HOSTILE);
    expect(c).not.toMatch(TERMINAL_CONTROL);
    expect(c).not.toMatch(/\n/);
    expect(c).toBe('\\x1b]0;PWN\\x07\\x1b[2J\\x9b31m\\u202eevil\\x0d\\x0aforged line');
    expect(cleanText('pid 42 (nginx)')).toBe('pid 42 (nginx)');
    expect(cleanText('x'.repeat(10), 4)).toBe('xxxx…');
  });
  it('is what the screen uses: clean() and fit() leave no control character', () => {
    expect(clean(HOSTILE)).not.toMatch(TERMINAL_CONTROL);
    expect(fit(HOSTILE, 80)).not.toMatch(TERMINAL_CONTROL);
  });
});

describe('shellQuote', () => {
  const words = (cmdline: string): string[] =>
    execFileSync('bash', ['-c', `printf '%s\\0' ${cmdline}`], { encoding: 'utf8' }).split('\0').slice(0, -1);
  it('every name stays one word, nothing runs', () => {
    const marker = `/tmp/ctop-shellquote-${process.pid}`;
    for (const name of ['INPUT', 'in; touch ' + marker, "it's $(touch " + marker + ')', '`touch ' + marker + '`', 'a b\tc', '\x1b[2Jx\ny', '', '-rf']) {
      const q = shellQuote(name);
      expect(q).not.toMatch(TERMINAL_CONTROL);
      expect(q).not.toMatch(/\n/);
      expect(words(q)).toEqual([name]);
    }
    expect(existsSync(marker)).toBe(false);
  });
});

describe('CSV cells', () => {
  it('neutralises formulas, keeps numbers', () => {
    expect(csvCell('=HYPERLINK("http://x","y")')).toBe(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csvCell('+1+1')).toBe("'+1+1");
    expect(csvCell('-1+cmd|x')).toBe("'-1+cmd|x");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\t=1')).toBe("'\t=1");
    expect(csvCell(-3)).toBe('-3');
    expect(csvCell('udp')).toBe('udp');
    expect(csvCell(null)).toBe('');
  });
  it('a recording with a formula in a field exports it as text', () => {
    const snaps = makeSnapshots(2);
    (snaps[0]!.ports[0] as { proto: string }).proto = '=cmd|"/c calc"!A1';
    const csv = portsCsv(snaps);
    expect(csv).toContain(`"'=cmd|""/c calc""!A1"`);
    expect(csv.split('\n').some((l) => l.split(',').some((cell) => /^[=+\-@]/.test(cell)))).toBe(false);
  });
});

describe('tables and diff with hostile fields', () => {
  it('formatTable cleans every cell', () => {
    const t = formatTable(['netns', 'n'], [[`pid 7 (${HOSTILE.slice(0, 15)})`, 3]]);
    expect(t).not.toMatch(TERMINAL_CONTROL);
    expect(t.split('\n')).toHaveLength(2);
  });
  it('formatTable takes 200,000 rows (no spread over the rows)', () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => [`p${i}`, i]);
    expect(formatTable(['port', 'n'], rows).split('\n')).toHaveLength(200_001);
  });
  it('diff prints no raw control character from either recording', () => {
    const a = makeSnapshots(3);
    const b = makeSnapshots(4);
    for (const s of [...a, ...b]) {
      for (const p of s.ports) Object.assign(p, { family: HOSTILE, proto: HOSTILE });
      (s.probe as { tier: string }).tier = HOSTILE;
    }
    const text = formatDiff(diffSummaries(`a${HOSTILE}`, summarize(a as SnapshotV1[]), 'b', summarize(b as SnapshotV1[])));
    expect(text).not.toMatch(TERMINAL_CONTROL);
    expect(text).toContain('\\x1b]0;PWN');
  });
});

describe('JSON on a terminal', () => {
  it('escapes what JSON.stringify leaves raw, and means the same', async () => {
    const { jsonForTerminal } = await import('../../src/util/sanitize.js');
    const v = { name: 'pid 1 (\x9b2J\u202e\u2028x)', n: [1, 2] };
    expect(JSON.stringify(v)).toMatch(/\x9b/);
    const j = jsonForTerminal(v);
    expect(j).not.toMatch(TERMINAL_CONTROL);
    expect(j).not.toMatch(/[\u2028\u202e]/);
    expect(JSON.parse(j)).toEqual(v);
  });
});
