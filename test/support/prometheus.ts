/**
 * A private Prometheus server for tests: its own config, a temporary TSDB,
 * a free loopback port; stop() kills it and removes its files. Never the
 * distribution's service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS = '/usr/bin/prometheus';

/** A port nothing listens on right now (loopback). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export interface Prom {
  url: string;
  proc: ChildProcess;
  /** Instant query; returns the result vector. */
  query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Polls `q` until its single value satisfies `ok`; returns it (throws with the last value on timeout). */
  waitFor(q: string, ok: (v: number) => boolean, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startPrometheus(target: string, scrapeInterval = '1s'): Promise<Prom> {
  const dir = mkdtempSync(join(tmpdir(), 'ctop-prom-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    `global:\n  scrape_interval: ${scrapeInterval}\n  evaluation_interval: ${scrapeInterval}\n` +
      `scrape_configs:\n  - job_name: ctop\n    scrape_interval: ${scrapeInterval}\n    scrape_timeout: ${scrapeInterval}\n    static_configs:\n      - targets: ['${target}']\n`,
  );
  const proc = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    rmSync(dir, { recursive: true, force: true });
  };
  const query: Prom['query'] = async (q) => {
    const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = (await r.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (j.status !== 'success') throw new Error(`prometheus query ${q}: ${j.error}`);
    return j.data!.result;
  };
  const waitFor: Prom['waitFor'] = async (q, ok, timeoutMs = 30_000) => {
    const end = Date.now() + timeoutMs;
    let last: string = 'no result';
    while (Date.now() < end) {
      const res = await query(q);
      if (res.length === 1) {
        const v = Number(res[0]!.value[1]);
        last = String(v);
        if (ok(v)) return v;
      } else {
        last = `${res.length} series: ${JSON.stringify(res).slice(0, 300)}`;
      }
      await sleep(250);
    }
    throw new Error(`prometheus: ${q} never matched; last: ${last}`);
  };
  // ready?
  const end = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited (${proc.exitCode}): ${stderr}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) {
      await stop();
      throw new Error(`prometheus not ready in 30 s: ${stderr}`);
    }
    await sleep(200);
  }
  return { url, proc, query, waitFor, stop };
}
