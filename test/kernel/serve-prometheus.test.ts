/**
 * `ctop serve` scraped by a real Prometheus (Debian's prometheus package)
 * during known traffic: the query API returns per-port insert counters equal
 * to the flows sent, a fixed set of K labelled ports with the rest in
 * port="other", and the increase over a known burst.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors.js';
import { createLab, runLoad, startServer, type Lab } from '../lab/netns.js';
import { ROOT, expectOneLineError, runCli, startCli, type CliResult } from '../support/cli.js';
import { freePort, startPrometheus, type Prom } from '../support/prometheus.js';
import { waitNoCtopPrograms } from '../support/cli.js';

describe('ctop serve scraped by Prometheus', () => {
  let lab: Lab;
  let stopServer: (() => Promise<unknown>) | undefined;
  let ctop: { proc: ChildProcess; done: Promise<CliResult> } | undefined;
  let prom: Prom | undefined;
  let metricsUrl = '';
  let srv = '';

  beforeAll(async () => {
    lab = createLab();
    srv = String(lab.netnsInode(lab.srv));
    stopServer = (await startServer(lab, { udp: [9200, 9201, 9202] })).stop;
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    ctop = await startCli(['serve', '--netns', lab.srv, '--listen', `127.0.0.1:${port}`, '--top-ports', '2', '--every', '1s'], /serving metrics on/);
    prom = await startPrometheus(`127.0.0.1:${port}`);
    await prom.waitFor('up{job="ctop"}', (v) => v === 1);
  });

  afterAll(async () => {
    await prom?.stop();
    if (ctop && ctop.proc.exitCode === null) {
      ctop.proc.kill('SIGKILL');
      await ctop.done;
    }
    await stopServer?.();
    lab?.destroy();
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  const inserts = (port: string): string => `ctop_inserts_total{netns="${srv}",family="ipv4",proto="udp",port="${port}"}`;

  it('per-port insert counters in Prometheus equal the flows sent', async () => {
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:9200`, '--flows', '500']);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:9201`, '--flows', '300']);
    expect(await prom!.waitFor(inserts('9200'), (v) => v >= 500)).toBe(500);
    expect(await prom!.waitFor(inserts('9201'), (v) => v >= 300)).toBe(300);
    expect(await prom!.waitFor(`ctop_netns_inserts_total{netns="${srv}"}`, (v) => v >= 800)).toBe(800);
    expect(await prom!.waitFor(`ctop_drops_total{netns="${srv}",port="9200"}`, () => true)).toBe(0);
    // conntrack's statistics are there, per namespace (recent kernels no longer count "insert")
    expect(await prom!.waitFor(`ctop_conntrack_stat_total{netns="${srv}",stat="drop"}`, () => true)).toBe(0);
    expect((await prom!.query(`ctop_conntrack_stat_total{netns="${srv}"}`)).length).toBe(10);
    expect(await prom!.waitFor(`ctop_conntrack_entries{netns="${srv}"}`, (v) => v >= 800)).toBe(800);
    expect(await prom!.waitFor('ctop_probe_info{tier="netfilter"}', () => true)).toBe(1);
    expect(await prom!.waitFor('ctop_conntrack_max_entries', (v) => v > 0)).toBeGreaterThan(0);
  });

  // A new flow that by chance reuses the 5-tuple of an entry still in the
  // table is no new entry: flush the lab's table before traffic on a port
  // that already has entries, so counts are exact.
  const flush = (): void => void lab.exec(lab.srv, ['conntrack', '-F']);

  it('a third port finds the K=2 slots taken and is counted in port="other"', async () => {
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:9202`, '--flows', '100']);
    expect(await prom!.waitFor('ctop_inserts_total{port="other"}', (v) => v >= 100)).toBe(100);
    expect((await prom!.query(inserts('9202'))).length).toBe(0);
    expect(await prom!.waitFor('ctop_port_series{state="labelled"}', () => true)).toBe(2);
    flush();
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:9202`, '--flows', '50']);
    expect(await prom!.waitFor('ctop_inserts_total{port="other"}', (v) => v >= 150)).toBe(150);
    // counters never went down: no resets seen by Prometheus
    expect(await prom!.waitFor('sum(resets(ctop_inserts_total[5m]))', () => true)).toBe(0);
  });

  it('the increase and rate over a known burst', async () => {
    // T0: after the counter settled at 500 and was scraped again
    const before = await prom!.waitFor(inserts('9200'), () => true);
    expect(before).toBe(500);
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now() / 1000;
    await new Promise((r) => setTimeout(r, 1500));
    flush();
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:9200`, '--flows', '250']);
    await prom!.waitFor(inserts('9200'), (v) => v >= 750);
    await new Promise((r) => setTimeout(r, 1500));
    const t1 = Date.now() / 1000;
    // the exact increase between two instants, from stored samples (no extrapolation)
    const q = `${inserts('9200')} @ ${t1.toFixed(3)} - ${inserts('9200')} @ ${t0.toFixed(3)}`;
    expect(await prom!.waitFor(q, () => true)).toBe(250);
    // and the per-second rate over that interval is 250 / (t1 - t0)
    const seconds = (t1 - t0).toFixed(3);
    const rate = await prom!.waitFor(`(${q}) / ${seconds}`, () => true);
    expect(rate).toBeCloseTo(250 / Number(seconds), 9);
    expect(await prom!.waitFor(`rate(${inserts('9200')}[1m])`, (v) => v > 0)).toBeGreaterThan(0);
  });

  it('speaks OpenMetrics to those who ask and the classic text format to others', async () => {
    const om = await fetch(metricsUrl, { headers: { Accept: 'application/openmetrics-text; version=1.0.0' } });
    expect(om.headers.get('content-type')).toMatch(/^application\/openmetrics-text/);
    const omText = await om.text();
    expect(omText.trimEnd().endsWith('# EOF')).toBe(true);
    expect(omText).toMatch(/^# TYPE ctop_inserts counter$/m);
    expect(omText).toMatch(new RegExp(`^ctop_inserts_total\\{netns="${srv}",family="ipv4",proto="udp",port="9200"\\} 750$`, 'm'));
    const plain = await (await fetch(metricsUrl)).text();
    expect(plain).toMatch(/^# TYPE ctop_inserts_total counter$/m);
    expect(plain).toMatch(new RegExp(`^ctop_inserts_total\\{netns="${srv}",family="ipv4",proto="udp",port="9200"\\} 750$`, 'm'));
    expect(plain).toMatch(/^ctop_process_cpu_seconds_total /m);
  });

  it('every query of the shipped Grafana dashboard runs, and the per-port panel shows the lab ports', async () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => ({ title: p.title, expr: t.expr.replaceAll('$instance', '.*').replaceAll('$__rate_interval', '1m') })));
    expect(exprs.length).toBeGreaterThan(10);
    for (const { title, expr } of exprs) {
      await expect(prom!.query(expr), title).resolves.toBeDefined();
    }
    const perPort = exprs.find((e) => e.title.startsWith('Inserts / s per port'))!;
    const ports = (await prom!.query(perPort.expr)).map((r) => r.metric.port).sort();
    expect(ports).toEqual(['9200', '9201', 'other']);
  });

  it('detaches cleanly on SIGTERM', async () => {
    ctop!.proc.kill('SIGTERM');
    const r = await ctop!.done;
    expect(r.code).toBe(143);
    expect(r.stderr).not.toMatch(/internal error|\bat .*:\d+:\d+/);
  });
});

describe('ctop serve refuses', () => {
  it('a non-loopback address without --allow-remote, in one line, exit 2', () => {
    const r = runCli(['serve', '--listen', '0.0.0.0:9633']);
    expect(r.code).toBe(ExitCode.usage);
    expect(expectOneLineError(r.stderr).message).toMatch(/not a loopback address/);
  });

  it('a malformed --listen and a --top-ports out of range', () => {
    for (const args of [['--listen', 'localhost'], ['--listen', '127.0.0.1:70000'], ['--top-ports', 'x']]) {
      const r = runCli(['serve', ...args]);
      expect(r.code).toBe(ExitCode.usage);
      expectOneLineError(r.stderr);
    }
  });

  it('a port already in use, in one line', async () => {
    const { createServer } = await import('node:net');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = runCli(['serve', '--listen', `127.0.0.1:${port}`], { timeoutMs: 30_000 });
      expect(r.code).toBe(ExitCode.failure);
      expect(expectOneLineError(r.stderr).message).toMatch(/cannot listen on 127\.0\.0\.1:\d+: the address is in use/);
    } finally {
      busy.close();
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  });
});
