/**
 * Recordings: a series of snapshot windows, one JSON document per line
 * (JSON Lines), so a recording cut short by a crash or a full disk is still
 * readable up to its last whole line.
 *
 *   line 1:  {"schema":"ctop.recording/v1","host":…,"kernel":…,"startedAt":…,"everyMs":…}
 *   line 2…: one ctop.snapshot/v1 document per window, oldest first
 *
 * Reading is strict: any problem is a one-line CtopError naming the file, the
 * line and what is wrong; nothing here throws anything else on bad input.
 */
import { readFileSync } from 'node:fs';
import { CtopError, ExitCode } from '../errors.js';
import { SNAPSHOT_SCHEMA, type SnapshotV1 } from '../model/snapshot.js';
import { validateSnapshot } from './validate.js';

export const RECORDING_SCHEMA = 'ctop.recording/v1';

export interface RecordingHeader {
  schema: typeof RECORDING_SCHEMA;
  host: string;
  kernel: string;
  startedAt: string;
  everyMs: number;
}

export interface Recording {
  header: RecordingHeader;
  snapshots: SnapshotV1[];
}

/** Files larger than this are refused rather than read into memory. */
export const MAX_RECORDING_BYTES = 512 * 1024 * 1024;

function fail(file: string, problem: string, hint = 'check the file, or record it again with `ctop record`'): never {
  throw new CtopError(`${file}: ${problem}`, hint, ExitCode.usage);
}

function parseLine(file: string, lineNo: number, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return fail(file, `line ${lineNo} is not valid JSON${text.length > 0 ? '' : ' (empty)'}`);
  }
}

function checkSchema(file: string, lineNo: number, schema: unknown, expected: string): void {
  if (schema === expected) return;
  if (typeof schema === 'string' && schema.startsWith(expected.replace(/\/v\d+$/, '/v'))) {
    fail(file, `line ${lineNo} has schema ${schema}, newer than this ctop reads (${expected})`, 'upgrade ctop to read it');
  }
  fail(file, `line ${lineNo} is not a ${expected} document (schema: ${JSON.stringify(schema)?.slice(0, 40)})`);
}

function validateHeader(file: string, v: unknown): RecordingHeader {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(file, 'line 1 is not a recording header object');
  const h = v as Record<string, unknown>;
  checkSchema(file, 1, h.schema, RECORDING_SCHEMA);
  for (const k of ['host', 'kernel', 'startedAt'] as const) {
    if (typeof h[k] !== 'string') fail(file, `line 1: "${k}" must be a string`);
  }
  if (typeof h.everyMs !== 'number' || !Number.isFinite(h.everyMs) || h.everyMs <= 0) fail(file, 'line 1: "everyMs" must be a positive number');
  return h as unknown as RecordingHeader;
}

/** Parses recording text. A single snapshot document (from `ctop snapshot --json`) is accepted as a one-window recording. */
export function parseRecording(file: string, text: string): Recording {
  const trimmed = text.trim();
  if (trimmed.length === 0) fail(file, 'the file is empty');
  // A pretty-printed single snapshot spans many lines: try it whole first.
  if (trimmed.startsWith('{') && !trimmed.startsWith(`{"schema":"${RECORDING_SCHEMA}"`)) {
    let whole: unknown;
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
  const header = validateHeader(file, parseLine(file, 1, lines[0] ?? ''));
  const snapshots: SnapshotV1[] = [];
  for (let i = 1; i < lines.length; i++) {
    const lineNo = i + 1;
    const v = parseLine(file, lineNo, lines[i] ?? '');
    checkSchema(file, lineNo, (v as { schema?: unknown } | null)?.schema, SNAPSHOT_SCHEMA);
    snapshots.push(validateSnapshot(v, (p) => fail(file, `line ${lineNo}: ${p}`)));
  }
  return { header, snapshots };
}

export function readRecording(file: string): Recording {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_RECORDING_BYTES) fail(file, `the file is larger than ${MAX_RECORDING_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    if (e instanceof CtopError) throw e;
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
