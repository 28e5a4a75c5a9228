/** Headless Chromium for checking what a generated page shows. Bounded, cleaned up, no network. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox', // root in a VM: Chromium's sandbox refuses to run as root
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--virtual-time-budget=2000', // let layout finish before the dump
];

function run(extra: string[], file: string): { stdout: string; stderr: string } {
  const profile = mkdtempSync(join(tmpdir(), 'ctop-chromium-'));
  try {
    const r = spawnSync(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, ...extra, `file://${file}`], {
      encoding: 'utf8',
      timeout: 60_000,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`chromium exited ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
    return { stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The DOM after Chromium loaded and laid out the page. */
export function renderDom(file: string): string {
  return run(['--dump-dom'], file).stdout;
}

/** A PNG screenshot; returns its size in bytes. */
export function screenshot(file: string, png: string): number {
  run([`--screenshot=${png}`, '--window-size=900,2400'], file);
  return statSync(png).size;
}

/** Text content of a rendered DOM, tags removed and entities decoded (enough for assertions). */
export function visibleText(dom: string): string {
  return dom
    .replace(/<style[\s\S]*?<\/style>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}
