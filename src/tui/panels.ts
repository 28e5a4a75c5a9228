/**
 * The text of every panel, as lines of blessed-tagged text that fit the
 * given inner width and height. Pure: the screen module only places these
 * lines; unit tests read them directly.
 */
import type { SnapshotV1, TupleRow } from '../model/snapshot.js';
import { MAX_K, bucketModel, bucketModelLabel } from '../model/bucketModel.js';
import { CHAIN_LIMIT } from '../model/census.js';
import { formatTimeToFull, fullestCount } from '../model/timeToFull.js';
import { portIsIcmpType } from '../model/conntrack.js';
import { topK } from '../model/topK.js';
import { formatMs } from '../util/duration.js';
import { helpLines, hintLine } from './keys.js';
import type { TuiModel } from './model.js';
import { currentView, type UiState } from './state.js';
import { SORT_LABEL, VIEWS, occupancyAge, viewKeepsSpans, type Selection, type SortKey, type TalkerRow } from './talkers.js';
import { bar, bold, clean, count, esc, fg, fit, fitRight, inverse, rate, sparkline, type Paint } from './text.js';
import { percent } from '../util/text.js';

export interface SourceInfo {
  /** "live" or "replay FILE". */
  label: string;
  intervalMs: number;
  replay?: { index: number; total: number; ended: boolean };
  /** A NOTRACK change made from the screen: its rollback countdown (tui/notrackPanel.ts). */
  notrack?: string;
}

export function headerLine(m: TuiModel, st: UiState, info: SourceInfo, width: number): string {
  const s = m.current;
  // Host first: over SSH it is what tells one screen from another. The kernel
  // release needs no label; the rest do.
  const left = ` ctop  ${s ? clean(s.host) : '…'}  ${s ? clean(s.kernel) : '…'}  tier ${s ? clean(s.probe.tier) : '…'}  every ${formatMs(info.intervalMs)}`;
  let state = st.paused ? 'PAUSED' : 'LIVE';
  if (info.replay) {
    const pos = `replay ${info.replay.index}/${info.replay.total}`;
    state = st.paused ? `PAUSED ${pos}` : info.replay.ended ? `${pos} end` : pos;
  }
  const right = info.notrack ? ` ${info.notrack}  ${state} ` : ` ${state} `;
  const room = Math.max(0, width - right.length);
  return inverse(esc(fit(left, room)) + bold(esc(right)));
}

function fillColour(p: Paint, ratio: number, text: string): string {
  return fg(p, ratio >= 0.9 ? 'red' : ratio >= 0.7 ? 'yellow' : 'green', text);
}

/** Table fill: the fullest namespace's count against nf_conntrack_max, its net growth and time to full. */
export function gaugeLine(m: TuiModel, width: number, p: Paint): string {
  const s = m.current;
  if (!s) return fit(' waiting for the first window…', width);
  const fullest = fullestCount(s).count;
  const ratio = s.table.max > 0 ? fullest / s.table.max : 0;
  const growth = m.netGrowthPerSec;
  const growthText = growth === null ? 'net —' : `net ${growth >= 0 ? '+' : '−'}${rate(Math.abs(growth))}/s`;
  const multi = s.namespaces.filter((n) => n.count > 0).length > 1 ? ' (fullest ns)' : '';
  const tail = ` ${percent(ratio)}  ${count(fullest)}/${count(s.table.max)}${multi}  ${growthText}  full in ${formatTimeToFull(m.timeToFullSec)}`;
  const barWidth = Math.max(0, width - 7 - tail.length);
  const head = ' table ';
  if (barWidth < 5) return fit(`${head}${tail.trimStart()}`, width);
  return `${bold(head)}${fillColour(p, ratio, bar(ratio, barWidth))}${esc(tail)}`;
}

const RATE_ROWS: { label: string; key: keyof TuiModel['history']; bad: boolean }[] = [
  { label: 'inserts', key: 'insertsPerSec', bad: false },
  { label: 'drops', key: 'dropsPerSec', bad: true },
  { label: 'early drop', key: 'earlyDropsPerSec', bad: true },
  { label: 'ins failed', key: 'insertFailedPerSec', bad: true },
];

/** Four sparklines: inserts/s, drops/s, early drops/s, insert_failed/s. */
export function ratesLines(m: TuiModel, width: number, height: number, p: Paint): string[] {
  const out: string[] = [];
  const labelW = 11;
  const valueW = 8;
  const sparkW = Math.max(0, width - labelW - valueW - 1);
  for (const r of RATE_ROWS.slice(0, Math.max(0, height))) {
    const series = m.history[r.key] as (number | null)[];
    const last = series.length > 0 ? series[series.length - 1]! : 0;
    const valueText = last === null ? 'n/a' : rate(last);
    const line = `${r.label.padEnd(labelW)}${sparkline(series, sparkW)} ${fitRight(valueText, valueW)}`;
    out.push(r.bad && last !== null && last > 0 ? fg(p, 'red', esc(line)) : esc(line));
  }
  return out;
}

/** Chain lengths 0..7 and "8 or more" from a measured histogram (buckets per length). */
function foldHistogram(rows: { k: number; orMore: boolean; buckets: number }[]): { k: number; orMore: boolean; buckets: number }[] {
  const out = Array.from({ length: MAX_K + 1 }, (_, k) => ({ k, orMore: k === MAX_K, buckets: 0 }));
  for (const r of rows) out[Math.min(MAX_K, r.k)]!.buckets += r.buckets;
  return out;
}

/**
 * The hash's chain lengths: measured by the latest census's walk of every
 * bucket (with its age), else the uniform-hash model, and it says which;
 * then the longest chain against the kernel's limit and the rates of the two
 * statistics a long chain drives (search_restart, chaintoolong).
 */
export function bucketLines(s: SnapshotV1 | undefined, width: number, height: number): string[] {
  if (!s) return [];
  if (s.table.buckets <= 0) return [fit('no bucket count (nf_conntrack_buckets)', width)];
  const h = s.hashBuckets;
  const measured = h !== undefined && h.method === 'bpf-hash-walk';
  let label: string;
  let histogram: { k: number; orMore: boolean; buckets: number }[];
  let loadFactor: number;
  let longest: number | null = null;
  if (measured) {
    histogram = foldHistogram(h.histogram);
    loadFactor = h.loadFactor;
    longest = h.longestChain;
    label = `measured ${Math.round(h.ageMs / 1000)}s ago  longest ${h.longestChain}/${CHAIN_LIMIT.min}`;
  } else {
    // Each entry sits in two chains (its original and its reply tuple), so
    // the hash holds twice as many nodes as entries.
    const m = bucketModel(2 * s.table.count, s.table.buckets);
    histogram = m.histogram;
    loadFactor = m.loadFactor;
    label = bucketModelLabel(m);
  }
  const peak = Math.max(...histogram.map((x) => x.buckets));
  const kName = (x: { k: number; orMore: boolean }): string => `${x.k}${x.orMore ? '+' : ''}`;
  const out: string[] = [fit(label, width)];
  if (height >= histogram.length + 2) {
    // Room for one row per chain length.
    const barW = Math.max(1, width - 16);
    for (const x of histogram) {
      const n = x.buckets >= 1 ? count(x.buckets) : x.buckets > 0 ? '<1' : '0';
      out.push(fit(`${kName(x).padStart(2)} ${fitRight(n, 11)} ${'█'.repeat(Math.round((x.buckets / peak) * barW))}`, width));
    }
  } else if (height >= 4) {
    const col = Math.max(3, Math.min(6, Math.floor(width / histogram.length)));
    out.push(histogram.map((x) => sparkBlock(x.buckets, peak).repeat(col - 1).padEnd(col)).join(''));
    out.push(fit(histogram.map((x) => kName(x).padEnd(col)).join(''), width));
  }
  if (height > out.length + 1) {
    // tall: the limit in full (the kernel refuses an insert whose chain is longer than 50 + a random 0..29)
    out.push(fit(longest === null ? `load ${loadFactor.toFixed(2)}  chain≥8 ${count(histogram.at(-1)!.buckets)}` : `longest chain ${longest}, kernel limit ${CHAIN_LIMIT.min}-${CHAIN_LIMIT.max}  load ${loadFactor.toFixed(2)}`, width));
  }
  const rates = `restart ${rate(s.rates.searchRestartPerSec)}/s  toolong ${rate(s.rates.chainTooLongPerSec)}/s`;
  out.push(fit(longest === null && width >= rates.length + 11 ? `load ${loadFactor.toFixed(2)} ${rates}` : rates, width));
  return out.slice(0, Math.max(0, height)).map(esc);
}

function sparkBlock(v: number, max: number): string {
  if (v <= 0 || max <= 0) return ' ';
  // Square-root scale: the tail (long chains) would vanish on a linear one.
  return '▁▂▃▄▅▆▇█'[Math.min(7, Math.ceil(Math.sqrt(v / max) * 8) - 1)] ?? ' ';
}

export function talkersTitle(st: UiState, sel: Selection | undefined, s?: SnapshotV1, occupancyError?: string, width = Infinity): string {
  // the Pods tab is named where there are pods (or it is open): elsewhere it only takes the title's room
  const pods = s?.namespaces.some((n) => n.owner?.kind === 'pod') === true;
  const shown = VIEWS.map((v, i) => ({ v, i })).filter(({ v, i }) => i === st.viewIndex || v.id !== 'pods' || pods);
  const tabs = shown.map(({ v, i }) => (i === st.viewIndex ? `[${v.title}]` : v.title)).join(' ');
  const filter = st.filter.text ? `  filter ${clean(st.filter.text)} (${sel?.total ?? 0})` : '';
  // the occupancy's age: a census is a moment, and the operator must know which
  const occ = occupancyError ? `  occ: census failed: ${clean(occupancyError)}` : s?.occupancy ? `  occ ${occupancyAge(s)}` : '';
  const rest = `  by ${SORT_LABEL[st.sort[currentView(st)]]}${filter}${occ} `;
  // too narrow for every tab: the open one and where it stands (Tab moves on)
  const at = shown.findIndex(({ i }) => i === st.viewIndex);
  const fitted = tabs.length + rest.length + 1 <= width ? tabs : `[${VIEWS[st.viewIndex]!.title}] ${at + 1}/${shown.length}`;
  return ` ${fitted}${rest}`;
}

/** Which page of rows is shown: pages, so the table does not scroll under the reader every refresh. */
export function pageStart(selected: number, visible: number): number {
  return visible > 0 ? Math.floor(Math.max(0, selected) / visible) * visible : 0;
}

/** Rows `limit` should ask for, so the page holding the selection is complete. */
export function rowsNeeded(selected: number, visible: number): number {
  return pageStart(selected, visible) + Math.max(1, visible);
}

export function talkersLines(sel: Selection | undefined, st: UiState, width: number, height: number, p: Paint): string[] {
  const view = currentView(st);
  const sort: SortKey = st.sort[view];
  const numW = 9;
  const spanW = 8;
  const pctW = 7;
  // entries held: up to 999,999 fits
  const occW = 9;
  // iftop-like: the window's rate, then over 10 s and 60 s, where the view keeps them (ports, ranges, namespaces)
  const spans = viewKeepsSpans(view);
  // a 5-tuple holds one entry: no occupancy column
  const occ = view !== 'tuples';
  // A tuple needs the room more than its namespace does (Enter shows it).
  const secondW = width >= 100 ? 16 : view === 'tuples' ? 0 : 10;
  const labelW = Math.max(8, width - secondW - 2 * numW - (spans ? 2 * spanW : 0) - pctW - (occ ? occW : 0) - 1);
  const mark = (k: SortKey, t: string): string => (sort === k ? `${t}▼` : t);
  const secondName = view === 'namespaces' || view === 'pods' ? 'fill' : view === 'ranges' ? 'role' : 'netns';
  const head =
    fit(` ${mark('name', { ports: 'port', tuples: '5-tuple', sources: 'source', namespaces: 'namespace', pods: 'pod', ranges: 'ports', roles: 'role' }[view])}`, labelW) +
    (secondW > 0 ? fitRight(secondName, secondW) : '') +
    fitRight(mark('inserts', 'ins/s'), numW) +
    (spans ? fitRight(mark('inserts10', '10s'), spanW) + fitRight(mark('inserts60', '60s'), spanW) : '') +
    fitRight(mark('drops', 'drops/s'), numW) +
    fitRight('share', pctW) +
    (occ ? fitRight(mark('occupancy', 'occ'), occW) : '');
  const out = [bold(esc(fit(head, width)))];
  const visible = Math.max(0, height - 1);
  if (!sel || sel.total === 0) {
    const why = !sel
      ? 'waiting for data…'
      : st.filter.text
        ? 'no row matches the filter (/ to change it, Esc clears it)'
        : view === 'pods'
          ? 'no Kubernetes pod here (their namespaces are named from kubelet\'s cgroups and /var/log/pods)'
          : view === 'namespaces' || view === 'ports' || view === 'ranges' || view === 'roles' || sel.total === 0
          ? 'nothing new in this window'
          : '';
    if (visible > 0) out.push(fit(` ${why}`, width));
    return out;
  }
  const start = pageStart(st.selected, visible);
  for (let i = start; i < Math.min(start + visible, sel.total, start + sel.rows.length); i++) {
    const r = sel.rows[i];
    if (!r) break;
    const second = view === 'namespaces' || view === 'pods' ? percent(r.occupancy) : view === 'ranges' ? r.role || '—' : clean(r.nsName);
    const spanText = (k: number): string => (r.spanInsertsPerSec ? rate(r.spanInsertsPerSec[k] ?? 0) : '—');
    const line =
      fit(` ${clean(r.label)}`, labelW) +
      (secondW > 0 ? fitRight(fit(second, secondW - 1).trimEnd(), secondW) : '') +
      fitRight(rate(r.insertsPerSec), numW) +
      (spans ? fitRight(spanText(0), spanW) + fitRight(spanText(1), spanW) : '') +
      fitRight(rate(r.dropsPerSec), numW) +
      fitRight(percent(r.share), pctW) +
      (occ ? fitRight(r.entries === null ? '—' : count(r.entries), occW) : '');
    const text = esc(fit(line, width));
    out.push(i === st.selected ? inverse(text) : r.dropsPerSec > 0 ? fg(p, 'red', text) : text);
  }
  return out;
}

function tupleText(t: { proto: string; src: string; sport: number; dst: string; dport: number; family: string }): string {
  const hp = (a: string, port: number): string => (t.family === 'ipv6' ? `[${a}]:${port}` : `${a}:${port}`);
  return `${t.proto} ${hp(t.src, t.sport)} → ${hp(t.dst, t.dport)}`;
}

/** What conntrack refused: rates, then the ports and the tuples it refused. */
export function dropsLines(s: SnapshotV1 | undefined, width: number, height: number, p: Paint): string[] {
  if (!s) return [];
  const r = s.rates;
  const out: string[] = [];
  const head = fit(`drops ${rate(r.dropsPerSec)}/s early ${rate(r.earlyDropsPerSec)}/s failed ${rate(r.insertFailedPerSec)}/s`, width);
  out.push(r.dropsPerSec > 0 || r.earlyDropsPerSec > 0 || r.insertFailedPerSec > 0 ? fg(p, 'red', esc(head)) : esc(head));
  const ports = s.ports.filter((x) => x.drops > 0).sort((a, b) => b.drops - a.drops);
  // the refused tuples the panel has room for: rows are built only for those
  const room = Math.max(0, height - 2);
  const cols = s.tupleColumns;
  const refused: TupleRow[] = topK(s.tuples.filter((x) => x.drops > 0), room, (a, b) => a.drops > b.drops);
  if (cols) {
    const at: number[] = [];
    for (let i = 0; i < cols.length; i++) if (cols.drops(i) > 0) at.push(i);
    for (const i of topK(at, room, (a, b) => cols.drops(a) > cols.drops(b))) refused.push(cols.row(i));
  }
  const tuples = refused.sort((a, b) => b.drops - a.drops);
  if (ports.length === 0 && tuples.length === 0) {
    out.push(fit(s.totals.drops > 0 ? 'refused packets not matched to a tuple' : 'nothing refused in this window', width));
    return out.slice(0, height).map((l, i) => (i === 0 ? l : esc(l)));
  }
  const portText = ports
    .slice(0, 6)
    .map((x) => `${x.proto}/${portIsIcmpType(x.protoNum) ? `type ${x.port}` : x.port} ${count(x.drops)}`)
    .join(', ');
  out.push(esc(fit(`ports: ${portText}`, width)));
  for (const t of tuples.slice(0, Math.max(0, height - out.length))) {
    const n = ` ${count(t.drops)}`;
    out.push(esc(fit(clean(tupleText(t)), width - n.length) + n));
  }
  return out.slice(0, Math.max(0, height));
}

export function detailsLines(row: TalkerRow | undefined): string[] {
  if (!row) return ['Nothing selected.', '', 'Esc or Enter closes.'];
  const details = row.details();
  const w = Math.max(...details.map(([k]) => k.length));
  return [bold(esc(clean(row.label))), '', ...details.map(([k, v]) => esc(`${k.padEnd(w)}  ${clean(v)}`)), '', 'Esc or Enter closes.'];
}

export function helpScreenLines(): string[] {
  return [
    bold('Keys'),
    '',
    ...helpLines().map(esc),
    '',
    esc('Table fill is the fullest namespace (the limit applies to each one); time'),
    esc('to full uses the net growth of its count. Hash buckets are measured where'),
    esc('the census walks the hash, else a model; the panel says which. README.md,'),
    esc('"Live UI", says more. Esc or ? closes.'),
  ];
}

export function footerLine(st: UiState, width: number, p: Paint): string {
  if (st.input !== null) {
    const err = st.inputError ? `  ${st.inputError}` : '';
    return esc(fit(`/ filter: ${clean(st.input)}█`, Math.max(0, width - err.length))) + fg(p, 'red', esc(err));
  }
  return esc(fit(` ${hintLine()}`, width));
}

export function errorLines(error: { message: string; hint?: string }, attempts: number, width: number): string[] {
  const wrap = (t: string): string[] => {
    const out: string[] = [];
    let rest = clean(t);
    const w = Math.max(10, width - 6);
    while (rest.length > w) {
      const cut = rest.lastIndexOf(' ', w) > w / 2 ? rest.lastIndexOf(' ', w) : w;
      out.push(rest.slice(0, cut));
      rest = rest.slice(cut).trimStart();
    }
    out.push(rest);
    return out;
  };
  return [
    bold('ctop: the data source failed'),
    '',
    ...wrap(error.message).map(esc),
    ...(error.hint ? ['', ...wrap(`hint: ${error.hint}`).map(esc)] : []),
    '',
    esc(`Retrying every second (attempt ${attempts}).`),
    esc('q quits.'),
  ];
}
