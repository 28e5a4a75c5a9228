/**
 * Recordings: a series of snapshot windows, one JSON document per line
 * (JSON Lines). `ctop record` appends each window as one write as soon as it
 * closes, so a recording stopped by a signal or a crash ends on a whole line
 * and reads like a shorter recording.
 *
 *   line 1:  {"schema":"ctop.recording/v1","host":…,"kernel":…,"startedAt":…,"everyMs":…,
 *             "memTotalBytes"?:…,"wordBits"?:…}   (optional fields: the recording host's RAM
 *             and word size, for the kernel's default sizing formula)
 *   line 2…: one ctop.snapshot/v1 document per window, oldest first
 *
 * Reading is strict: any problem (a line cut short, corrupt JSON, a newer
 * schema, a wrong type) is a one-line CtopError naming the file, the line and
 * what is wrong; nothing here throws anything else on bad input. Text taken
 * from the file is escaped before it goes into a message, so a hostile file
 * cannot add lines to the error.
 */
import { InputLimitError, jsonDepth, MAX_JSON_DEPTH, readFileBounded } from '../util/boundedRead.js';
import { CtopError, ExitCode } from '../errors.js';
import { RECORDING_SCHEMA, type Recording, type RecordingHeader } from '../model/recording.js';
import { SNAPSHOT_SCHEMA, type SnapshotV1 } from '../model/snapshot.js';
import { oneLine } from '../util/text.js';
import { validateSnapshot } from './validate.js';

/** Files larger than this are refused rather than read into memory. */
export const MAX_RECORDING_BYTES = 512 * 1024 * 1024;

function fail(file: string, problem: string, hint = 'check the file, or record it again with `ctop record`'): never {
  throw new CtopError(`${oneLine(file, 200)}: ${oneLine(problem)}`, hint, ExitCode.usage);
}

/** A short, safe description of a value taken from a file (never stringifies deep structures). */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v === 'undefined' ? 'missing' : String(v).slice(0, 40);
}

function parseLine(file: string, lineNo: number, text: string, last = false): unknown {
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) fail(file, `line ${lineNo} nests deeper than ${MAX_JSON_DEPTH} levels: not a ctop document`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    if (text.trim().length === 0) return fail(file, `line ${lineNo} is empty`);
    if (last && lineNo > 1) {
      return fail(
        file,
        `line ${lineNo} is cut short or corrupt (not valid JSON): the file looks truncated`,
        'a recording stopped mid-write loses its last line: delete that line (`sed -i \'$d\' FILE`) to read the rest',
      );
    }
    return fail(file, `line ${lineNo} is not valid JSON`);
  }
}

function checkSchema(file: string, lineNo: number, schema: unknown, expected: string): void {
  if (schema === expected) return;
  if (typeof schema === 'string' && schema.startsWith(expected.replace(/\/v\d+$/, '/v'))) {
    fail(file, `line ${lineNo} has schema ${describe(schema)}, which this ctop does not read (it reads ${expected})`, 'it was written by a newer ctop: upgrade ctop to read it');
  }
  fail(file, `line ${lineNo} is not a ${expected} document (schema: ${describe(schema)})`);
}

function validateHeader(file: string, v: unknown): RecordingHeader {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(file, 'line 1 is not a recording header object');
  const h = v as Record<string, unknown>;
  checkSchema(file, 1, h.schema, RECORDING_SCHEMA);
  for (const k of ['host', 'kernel', 'startedAt'] as const) {
    if (typeof h[k] !== 'string') fail(file, `line 1: "${k}" must be a string`);
  }
  if (typeof h.everyMs !== 'number' || !Number.isFinite(h.everyMs) || h.everyMs <= 0) fail(file, 'line 1: "everyMs" must be a positive number');
  if (h.memTotalBytes !== undefined && (typeof h.memTotalBytes !== 'number' || !Number.isFinite(h.memTotalBytes) || h.memTotalBytes < 0)) {
    fail(file, 'line 1: "memTotalBytes" must be a number of bytes');
  }
  if (h.wordBits !== undefined && h.wordBits !== 32 && h.wordBits !== 64) fail(file, 'line 1: "wordBits" must be 32 or 64');
  return h as unknown as RecordingHeader;
}

/** Parses recording text. A single snapshot document (from `ctop snapshot --json`) is accepted as a one-window recording. */
export function parseRecording(file: string, text: string): Recording {
  const trimmed = text.trim();
  if (trimmed.length === 0) fail(file, 'the file is empty');
  // A pretty-printed single snapshot spans many lines: try it whole first.
  if (trimmed.startsWith('{') && !trimmed.startsWith(`{"schema":"${RECORDING_SCHEMA}"`)) {
    let whole: unknown;
    if (jsonDepth(trimmed, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) fail(file, `the document nests deeper than ${MAX_JSON_DEPTH} levels: not a ctop document`);
    try {
      whole = JSON.parse(trimmed);
    } catch {
      whole = undefined;
    }
    if (whole !== undefined && typeof whole === 'object' && whole !== null && (whole as { schema?: unknown }).schema !== RECORDING_SCHEMA) {
      checkSchema(file, 1, (whole as { schema?: unknown }).schema, SNAPSHOT_SCHEMA);
      const snap = validateSnapshot(whole, (p) => fail(file, p));
      return {
        header: { schema: RECORDING_SCHEMA, host: snap.host, kernel: snap.kernel, startedAt: snap.startedAt, everyMs: snap.durationMs },
        snapshots: [snap],
      };
    }
  }
  const lines = trimmed.split('\n');
  const header = validateHeader(file, parseLine(file, 1, lines[0] ?? '', lines.length === 1));
  const snapshots: SnapshotV1[] = [];
  for (let i = 1; i < lines.length; i++) {
    const lineNo = i + 1;
    const v = parseLine(file, lineNo, lines[i] ?? '', i === lines.length - 1);
    checkSchema(file, lineNo, (v as { schema?: unknown } | null)?.schema, SNAPSHOT_SCHEMA);
    snapshots.push(validateSnapshot(v, (p) => fail(file, `line ${lineNo}: ${p}`)));
  }
  return { header, snapshots };
}

export function readRecording(file: string): Recording {
  let text: string;
  try {
    text = readFileBounded(file, MAX_RECORDING_BYTES).toString('utf8');
  } catch (e) {
    if (e instanceof CtopError) throw e;
    if (e instanceof InputLimitError) return fail(file, e.message, 'give the path of a file made by `ctop record` or `ctop snapshot --json`');
    const code = (e as { code?: string }).code;
    return fail(file, code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(e)})`, 'give the path of a file made by `ctop record` or `ctop snapshot --json`');
  }
  return parseRecording(file, text);
}

export function headerLine(h: Omit<RecordingHeader, 'schema'>): string {
  return JSON.stringify({ schema: RECORDING_SCHEMA, ...h });
}

export function snapshotLine(s: SnapshotV1): string {
  return JSON.stringify(s);
}

/** Reads a recording that views can chart: at least one window. */
export function readWindows(file: string): Recording {
  const rec = readRecording(file);
  if (rec.snapshots.length === 0) fail(file, 'the recording has no windows (it was stopped before the first window closed)', 'record for at least one --every interval');
  return rec;
}
