/**
 * Structural validation of a ctop.snapshot/v1 document read from a file: every
 * field the rest of ctop reads is checked for presence and type, so that a
 * corrupt or hostile file fails here with a message instead of crashing a view.
 */
import type { SnapshotV1 } from '../model/snapshot.js';

type Fail = (problem: string) => never;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function num(o: Record<string, unknown>, k: string, where: string, fail: Fail, nullable = false): void {
  const v = o[k];
  if (nullable && v === null) return;
  if (!isNum(v)) fail(`${where}.${k} must be a number`);
  // Counts, rates and ratios are never negative; a negative one would
  // draw charts upside down and make diffs lie.
  if ((v as number) < 0) fail(`${where}.${k} must not be negative`);
}

function int(o: Record<string, unknown>, k: string, where: string, fail: Fail, max: number): void {
  const v = o[k];
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max) fail(`${where}.${k} must be a whole number from 0 to ${max}`);
}

function str(o: Record<string, unknown>, k: string, where: string, fail: Fail): void {
  if (typeof o[k] !== 'string') fail(`${where}.${k} must be a string`);
}

function obj(o: Record<string, unknown>, k: string, where: string, fail: Fail): Record<string, unknown> {
  const v = o[k];
  if (!isObj(v)) return fail(`${where}.${k} must be an object`);
  return v;
}

function arr(o: Record<string, unknown>, k: string, where: string, fail: Fail, maxLen = 10_000_000): unknown[] {
  const v = o[k];
  if (!Array.isArray(v)) return fail(`${where}.${k} must be an array`);
  if (v.length > maxLen) fail(`${where}.${k} has more than ${maxLen} rows`);
  return v;
}

const FAMILIES = new Set(['ipv4', 'ipv6']);

const LATEST_MS = Date.UTC(9999, 11, 31);
const MAX_WINDOW_MS = 366 * 86_400_000;

export function validateSnapshot(v: unknown, fail: Fail): SnapshotV1 {
  if (!isObj(v)) return fail('a snapshot must be a JSON object');
  for (const k of ['host', 'kernel', 'startedAt']) str(v, k, 'snapshot', fail);
  const t = Date.parse(v.startedAt as string);
  // Views add durations to this and print dates: keep both within what Date can hold.
  if (!(t >= 0 && t <= LATEST_MS)) fail('snapshot.startedAt must be an ISO date between 1970 and 9999');
  num(v, 'durationMs', 'snapshot', fail);
  if ((v.durationMs as number) <= 0 || (v.durationMs as number) > MAX_WINDOW_MS) fail('snapshot.durationMs must be from 1 ms to a year');
  const probe = obj(v, 'probe', 'snapshot', fail);
  if (probe.tier !== 'netfilter' && probe.tier !== 'stats' && typeof probe.tier !== 'string') fail('probe.tier must be a string');
  arr(probe, 'programs', 'probe', fail, 100);
  arr(probe, 'refused', 'probe', fail, 100);
  const table = obj(v, 'table', 'snapshot', fail);
  for (const k of ['count', 'max', 'buckets', 'fillRatio']) num(table, k, 'table', fail);
  const rates = obj(v, 'rates', 'snapshot', fail);
  num(rates, 'insertsPerSec', 'rates', fail, true);
  for (const k of ['dropsPerSec', 'earlyDropsPerSec', 'insertFailedPerSec']) num(rates, k, 'rates', fail);
  // Added to v1 later than the three above: optional, but numbers when present.
  for (const k of ['clashResolvePerSec', 'searchRestartPerSec', 'chainTooLongPerSec', 'invalidPerSec']) {
    if (rates[k] !== undefined) num(rates, k, 'rates', fail);
  }
  const totals = obj(v, 'totals', 'snapshot', fail);
  num(totals, 'inserts', 'totals', fail, true);
  num(totals, 'drops', 'totals', fail);
  arr(v, 'ports', 'snapshot', fail).forEach((p, i) => {
    const w = `ports[${i}]`;
    if (!isObj(p)) fail(`${w} must be an object`);
    const r = p as Record<string, unknown>;
    if (!FAMILIES.has(r.family as string)) fail(`${w}.family must be "ipv4" or "ipv6"`);
    str(r, 'proto', w, fail);
    for (const k of ['netns', 'protoNum', 'port', 'inserts', 'drops']) num(r, k, w, fail);
    int(r, 'port', w, fail, 65535);
    int(r, 'protoNum', w, fail, 255);
  });
  arr(v, 'tuples', 'snapshot', fail).forEach((t, i) => {
    const w = `tuples[${i}]`;
    if (!isObj(t)) fail(`${w} must be an object`);
    const r = t as Record<string, unknown>;
    if (!FAMILIES.has(r.family as string)) fail(`${w}.family must be "ipv4" or "ipv6"`);
    for (const k of ['proto', 'src', 'dst']) str(r, k, w, fail);
    for (const k of ['netns', 'protoNum', 'sport', 'dport', 'inserts', 'drops']) num(r, k, w, fail);
  });
  arr(v, 'namespaces', 'snapshot', fail).forEach((n, i) => {
    const w = `namespaces[${i}]`;
    if (!isObj(n)) fail(`${w} must be an object`);
    const r = n as Record<string, unknown>;
    str(r, 'name', w, fail);
    for (const k of ['inode', 'count', 'fillRatio', 'drops']) num(r, k, w, fail);
    num(r, 'inserts', w, fail, true);
  });
  const overflow = obj(v, 'overflow', 'snapshot', fail);
  for (const k of ['portMapFull', 'tupleMapFull']) num(overflow, k, 'overflow', fail);
  // census (`--census`): optional; present, it must be an object with its entry counts.
  if (v.census !== undefined) {
    const c = obj(v, 'census', 'snapshot', fail);
    for (const k of ['entries', 'assured', 'unreplied']) num(c, k, 'census', fail);
  }
  return v as unknown as SnapshotV1;
}
