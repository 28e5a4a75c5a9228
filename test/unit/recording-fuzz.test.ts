/**
 * The snapshot/recording reader is strict: truncated, corrupt, future-version
 * and hostile files give a one-line CtopError naming the file, never another
 * exception. Random bytes, truncations at every length, mutated real
 * recordings, deep nesting, huge numbers, future schemas and
 * prototype-pollution keys; and the views (diff, report, CSV) must not crash
 * on whatever the reader accepts.
 */
import { describe, expect, it } from 'vitest';
import { CtopError } from '../../src/errors.js';
import { parseRecording } from '../../src/io/recording.js';
import { type Recording } from '../../src/model/recording.js';
import { summarize } from '../../src/model/series.js';
import { diffSummaries } from '../../src/model/diff.js';
import { formatDiff } from '../../src/format/diffText.js';
import { reportHtml } from '../../src/export/reportHtml.js';
import { portsCsv, windowsCsv } from '../../src/export/csv.js';
import { makeSnapshots, recordingText } from './recordingFixture.js';
import { oneLine } from '../../src/util/text.js';

const FILE = '/data/rec.jsonl';

/** Deterministic PRNG (mulberry32): a failure reproduces from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every view of an accepted recording must run without throwing. */
function useAll(rec: Recording): void {
  if (rec.snapshots.length === 0) return;
  const s = summarize(rec.snapshots);
  formatDiff(diffSummaries('a', s, 'b', s));
  reportHtml(FILE, rec);
  windowsCsv(rec.snapshots);
  portsCsv(rec.snapshots);
}

/** Parses; any failure must be a one-line CtopError naming the file. Returns 'ok' or the message. */
function check(text: string, file = FILE): string {
  let rec: Recording;
  try {
    rec = parseRecording(file, text);
  } catch (e) {
    if (!(e instanceof CtopError)) throw new Error(`not a CtopError for input ${JSON.stringify(text.slice(0, 200))}: ${String(e)}`);
    expect(e.message.startsWith(`${oneLine(file, 200)}: `), e.message).toBe(true);
    expect(e.message).not.toMatch(/[\n\r]/);
    expect(e.hint).not.toMatch(/[\n\r]/);
    expect(e.message.length).toBeLessThan(600);
    return e.message;
  }
  useAll(rec);
  return 'ok';
}

const real = recordingText(makeSnapshots(6));

describe('recording reader: fuzzing', () => {
  it('accepts the real recording, and every view works on it', () => {
    expect(check(real)).toBe('ok');
  });

  it('random bytes', () => {
    const r = rng(1);
    for (let i = 0; i < 2000; i++) {
      const n = Math.floor(r() * 400);
      const bytes = Buffer.alloc(n);
      for (let j = 0; j < n; j++) bytes[j] = Math.floor(r() * 256);
      check(bytes.toString('utf8'));
    }
  });

  it('random JSON-ish text (braces, quotes, digits, keys)', () => {
    const r = rng(2);
    const atoms = ['{', '}', '[', ']', '"', ':', ',', '\n', '1e309', '-0', 'null', 'true', '"schema"', '"ctop.snapshot/v1"', '"ctop.recording/v1"', '"__proto__"', '"ports"', '9'];
    for (let i = 0; i < 3000; i++) {
      let t = '';
      const n = Math.floor(r() * 60);
      for (let j = 0; j < n; j++) t += atoms[Math.floor(r() * atoms.length)];
      check(t);
    }
  });

  it('every truncation of a real recording', () => {
    const step = Math.max(1, Math.floor(real.length / 1500));
    for (let len = 0; len < real.length; len += step) {
      const msg = check(real.slice(0, len));
      // A cut that happens to fall on a line end is a shorter, valid recording.
      if (msg !== 'ok' && len > 0 && real[len - 1] !== '\n' && real.slice(0, len).trim().includes('\n')) {
        expect(msg).toMatch(/cut short|is not valid JSON|must|empty|not a/);
      }
    }
  });

  it('a cut in the last line says the file looks truncated', () => {
    expect(check(real.slice(0, real.length - 30))).toMatch(/line 7 is cut short or corrupt \(not valid JSON\): the file looks truncated/);
  });

  it('mutated real recordings: flipped bytes, deleted and duplicated spans', () => {
    const r = rng(3);
    for (let i = 0; i < 1500; i++) {
      const b = Buffer.from(real, 'utf8');
      const kind = i % 3;
      let out: Buffer;
      if (kind === 0) {
        out = Buffer.from(b);
        for (let k = 0; k < 1 + Math.floor(r() * 4); k++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
      } else if (kind === 1) {
        const at = Math.floor(r() * b.length);
        out = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(r() * 50)))]);
      } else {
        const at = Math.floor(r() * b.length);
        const len = Math.floor(r() * 80);
        out = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
      }
      check(out.toString('utf8'));
    }
  });

  it('mutated values: every field of a snapshot set to hostile values', () => {
    const snap = makeSnapshots(2)[1]! as unknown as Record<string, unknown>;
    const hostile: unknown[] = [null, -1, 1e308, -1e308, 1.5, '', 'x'.repeat(10_000), [], {}, true, '2026-13-99', 70000, { __proto__: { polluted: 1 } }];
    const paths: string[][] = [];
    const walk = (o: unknown, p: string[]): void => {
      if (p.length > 0) paths.push(p);
      if (o && typeof o === 'object') for (const k of Object.keys(o)) walk((o as Record<string, unknown>)[k], [...p, k]);
    };
    walk(snap, []);
    for (const path of paths) {
      for (const h of hostile) {
        const copy = JSON.parse(JSON.stringify(snap)) as Record<string, unknown>;
        let o: Record<string, unknown> = copy;
        for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
        o[path[path.length - 1]!] = h;
        check(`${recordingText([])}${JSON.stringify(copy)}\n`);
        check(JSON.stringify(copy)); // as a lone snapshot, too
      }
    }
  });

  it('deep nesting, in every place', () => {
    const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);
    const deepObj = (n: number): string => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    for (const d of [deep(100_000), deepObj(100_000)]) {
      check(d);
      check(`${recordingText([])}${d}\n`);
      check(`{"schema":${d}}`);
      check(`${recordingText([])}{"schema":${d}}\n`);
      const snap = JSON.parse(JSON.stringify(makeSnapshots(1)[0])) as Record<string, unknown>;
      const text = JSON.stringify(snap).replace('"census":', '"x":').replace(/}$/, `,"census":${d},"advice":${d}}`);
      check(`${recordingText([])}${text}\n`);
    }
  });

  it('huge numbers and long lines', () => {
    const snap = makeSnapshots(1)[0]!;
    const big = JSON.stringify(snap).replace(/"count":\d+/, '"count":1e400');
    expect(check(`${recordingText([])}${big}\n`)).toMatch(/table\.count must be a number/);
    const huge = JSON.stringify(snap).replace(/"max":\d+/, '"max":1e300');
    expect(check(`${recordingText([])}${huge}\n`)).toBe('ok');
    const longDur = JSON.stringify(snap).replace(/"durationMs":\d+/, '"durationMs":1e300');
    expect(check(`${recordingText([])}${longDur}\n`)).toMatch(/durationMs must be from 1 ms to a year/);
    const farDate = JSON.stringify(snap).replace(/"startedAt":"[^"]+"/, '"startedAt":"+275760-09-13T00:00:00.000Z"');
    expect(check(`${recordingText([])}${farDate}\n`)).toMatch(/startedAt must be an ISO date/);
    const hugeHost = JSON.stringify({ ...snap, host: 'h'.repeat(5_000_000) });
    expect(check(`${recordingText([])}${hugeHost}\n`)).toBe('ok');
    expect(check(`${recordingText([])}${'1'.repeat(1_000_000)}\n`)).toMatch(/line 2 is not a ctop\.snapshot\/v1 document/);
  });

  it('future schemas: a one-line "newer ctop" error', () => {
    const future = real.replace('"ctop.recording/v1"', '"ctop.recording/v2"');
    expect(check(future)).toMatch(/line 1 has schema "ctop\.recording\/v2", which this ctop does not read \(it reads ctop\.recording\/v1\)/);
    const lines = real.trim().split('\n');
    lines[3] = lines[3]!.replace('"ctop.snapshot/v1"', '"ctop.snapshot/v7"');
    expect(check(lines.join('\n'))).toMatch(/line 4 has schema "ctop\.snapshot\/v7"/);
    const single = JSON.stringify({ ...makeSnapshots(1)[0], schema: 'ctop.snapshot/v2' });
    expect(check(single)).toMatch(/schema "ctop\.snapshot\/v2"/);
  });

  it('hostile text cannot add lines to the error', () => {
    const evil = JSON.stringify({ schema: 'ctop.snapshot/v9\nhint: run rm -rf /\u2028x' });
    const msg = check(evil);
    expect(msg).not.toMatch(/\n/);
    expect(check(real, '/tmp/evil\nname.jsonl')).toBe('ok');
    expect(check('garbage', '/tmp/evil\nname.jsonl')).toMatch(/^\/tmp\/evil\\x0aname\.jsonl: /);
  });

  it('prototype-pollution keys are data, not prototypes', () => {
    const snap = JSON.parse(JSON.stringify(makeSnapshots(2)[1])) as Record<string, unknown>;
    const text = JSON.stringify(snap)
      .replace(/^\{/, '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},')
      .replace('"table":{', '"table":{"__proto__":{"count":"x"},')
      .replace(/}$/, ',"census":{"__proto__":{"polluted":"yes"},"entries":5},"advice":[{"__proto__":{"message":"x"},"id":"a","message":"m"}]}');
    check(`${recordingText([])}${text}\n`);
    check(text);
    const head = `{"schema":"ctop.recording/v1","__proto__":{"everyMs":5},"host":"h","kernel":"k","startedAt":"2026-11-25T10:00:00.000Z","everyMs":1000}\n`;
    check(`${head}${JSON.stringify(snap)}\n`);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    expect(check(head.replace(',"everyMs":1000', ''))).toMatch(/everyMs/);
  });

  it('census: absent is fine; the wrong kind is refused', () => {
    const snap = makeSnapshots(1)[0]!;
    expect(check(JSON.stringify({ ...snap, census: [] }))).toMatch(/census must be an object/);
    expect(check(JSON.stringify({ ...snap, census: { entries: 3 } }))).toMatch(/census\.assured/);
    expect(check(JSON.stringify({ ...snap, census: { entries: '3', assured: 1, unreplied: 0 } }))).toMatch(/census\.entries/);
    expect(check(JSON.stringify({ ...snap, census: { entries: 3, assured: 1, unreplied: 0 } }))).toBe('ok');
  });

  it('empty files, blank lines and header-only recordings', () => {
    expect(check('')).toMatch(/the file is empty/);
    expect(check('\n\n  \n')).toMatch(/the file is empty/);
    const lines = real.trim().split('\n');
    expect(check([lines[0], '', lines[1]].join('\n'))).toMatch(/line 2 is empty/);
    expect(check(`${lines[0]}\n`)).toBe('ok');
  });
});
