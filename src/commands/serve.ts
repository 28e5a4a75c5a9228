/**
 * `ctop serve`: a Prometheus / OpenMetrics endpoint. One window per tick
 * (default 1 s) updates the metrics, whatever the scrape rate, so a busy
 * scraper costs a text rendering, never extra kernel reads. With --replay the
 * ticks play a recording's windows instead (no root; the metrics then hold
 * at the last window).
 */
import type { Command } from 'commander';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Registry, collectDefaultMetrics, type RegistryContentType } from 'prom-client';
import { CtopError, ExitCode, describeError } from '../errors.js';
import { checkPrivileges } from '../preflight.js';
import type { WindowSource } from '../model/snapshot.js';
import { KernelSource } from '../source/kernelSource.js';
import { thisHost } from '../source/host.js';
import { ReplayWindows } from '../source/replay.js';
import { LiveWindows } from '../source/windows.js';
import { Exporter } from '../serve/exporter.js';
import { applyServerLimits, checkExposure, parseListen, SERVER_OPTIONS, type ListenAddress } from '../util/listen.js';
import { formatMs } from '../util/duration.js';
import { onTermination } from '../util/signals.js';
import { addOccupancyOptions, addProbeOptions, countOption, durationOption, occupancySettings, probeSettings, replayOption, type OccupancyChoice, type OccupancySettings, type ProbeSettings } from './options.js';
import { startBackgroundCensus } from '../source/occupancy.js';
import { DEFAULT_BUDGET_SHARE } from '../model/occupancy.js';

export interface ServeOptions extends ProbeSettings, Partial<OccupancySettings> {
  listen: ListenAddress;
  allowRemote: boolean;
  topPorts: number;
  everyMs: number;
  /** a recording to serve instead of the kernel, one window per tick */
  replay?: string;
}

/**
 * Two registries with identical contents, one per exposition format:
 * prom-client renames counters in place when it renders OpenMetrics, so one
 * registry cannot serve both formats.
 */
function registries(topPorts: number): { reg: Registry<RegistryContentType>; exporter: Exporter }[] {
  return [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE].map((type) => {
    const reg = new Registry<RegistryContentType>();
    reg.setContentType(type);
    // ctop's own CPU and memory (process_*): its overhead, next to its figures.
    // prom-client samples the event loop delay every 10 ms by default: 100
    // wake-ups a second for a process that has work once a second. Measured
    // on a busy 2-core host that cost the flood about 2 points of throughput;
    // one sample a second keeps the metric and gives the CPU back.
    collectDefaultMetrics({ register: reg, prefix: 'ctop_', eventLoopMonitoringPrecision: 1000 });
    return { reg, exporter: new Exporter(reg, topPorts) };
  });
}

function listen(server: ReturnType<typeof createServer>, addr: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'the address is in use' : e.code === 'EADDRNOTAVAIL' ? 'no interface has that address' : (e.code ?? e.message);
      reject(new CtopError(`cannot listen on ${addr.host}:${addr.port}: ${why}`, 'pick another --listen address or port', ExitCode.failure));
    });
    server.listen(addr.port, addr.host, () => resolve());
  });
}

async function runServe(o: ServeOptions): Promise<void> {
  checkExposure(o.listen, o.allowRemote);
  // The file first (a wrong path is the likelier mistake); a replay needs no root.
  const replay = o.replay !== undefined ? new ReplayWindows(o.replay) : undefined;
  if (!replay) checkPrivileges();
  // the exporter shows no tuples: the windows skip reading them; the first
  // window starts from zero, so counters begin where the kernel's do
  const kernel = replay ? undefined : new KernelSource({ ...o, rescanMs: 1000 });
  const live = kernel ? new LiveWindows(kernel, thisHost(), { top: 0, unsorted: true, tuples: false, fromZero: true }) : undefined;
  const windows: WindowSource = replay ?? live!;
  const regs = registries(o.topPorts);
  let timer: NodeJS.Timeout | undefined;
  /** No metrics before the probe is attached and sampled once: a scrape then gets 503. */
  let ready = false;
  const server = createServer(SERVER_OPTIONS, (req: IncomingMessage, res: ServerResponse) => {
    void respond(req, res);
  });
  applyServerLimits(server);
  const stop = (): void => {
    if (timer) clearInterval(timer);
    server.close();
    server.closeAllConnections();
    windows.close();
  };
  const stopListening = onTermination(stop);

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      } else if (path === '/metrics' && !ready) {
        res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '1' }).end('ctop: starting\n');
      } else if (path === '/metrics') {
        // Prometheus asks for OpenMetrics in its Accept header; others get the classic text format.
        const om = /application\/openmetrics-text/.test(req.headers.accept ?? '');
        const { reg } = regs[om ? 1 : 0]!;
        const body = await reg.metrics();
        res.writeHead(200, { 'Content-Type': reg.contentType }).end(req.method === 'HEAD' ? undefined : body);
      } else if (path === '/') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('ctop: conntrack metrics at /metrics\n');
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      }
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${describeError(e)}\n`);
    }
  }

  const tick = (): void => {
    const t0 = performance.now();
    try {
      const w = windows.next();
      const secs = (performance.now() - t0) / 1000;
      if (w) {
        for (const r of regs) {
          r.exporter.update(w, secs);
          r.exporter.updateOccupancy(w);
        }
      }
    } catch (e) {
      // One bad read must not end the exporter; it shows in ctop_sample_errors_total.
      for (const r of regs) r.exporter.sampleFailed();
      process.stderr.write(`ctop: sampling failed: ${describeError(e)}\n`);
    }
  };

  try {
    // Bind first: a busy port is reported before anything is loaded.
    await listen(server, o.listen);
    const first = live ? await live.start() : undefined;
    // who holds the table: counted in a thread of its own, within its CPU budget; each window carries the latest census
    if (live && kernel) live.attachOccupancy(startBackgroundCensus(kernel, { occupancy: o.occupancy ?? 'auto', budgetShare: o.budgetShare ?? DEFAULT_BUDGET_SHARE }));
    tick();
    ready = true;
    process.stderr.write(
      `ctop: ${first ? `${first.probe.tier} tier, watching ${first.namespaces.length} namespace(s)` : windows.label}; serving metrics on http://${o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host}:${o.listen.port}/metrics (a window every ${formatMs(o.everyMs)}, top ${o.topPorts} ports)\n`,
    );
    timer = setInterval(tick, o.everyMs);
    // Runs until a signal: onTermination detaches and exits.
    await new Promise<void>((resolve) => server.once('close', () => resolve()));
  } finally {
    stop();
    stopListening();
  }
}

export function registerServe(program: Command): void {
  addOccupancyOptions(addProbeOptions(
    program
      .command('serve')
      .description('a Prometheus/OpenMetrics endpoint: table fill, statistics, inserts and drops per port')
      .option('--listen <host:port>', 'address to listen on (loopback unless --allow-remote)', '127.0.0.1:9633')
      .option('--allow-remote', 'allow a non-loopback --listen address')
      .addOption(countOption('--top-ports <k>', 'ports with their own series; the rest add up in port="other"', '50', { min: 0, max: 10_000 }))
      .addOption(durationOption('--every <time>', 'how often to sample the kernel (with --replay: to play the next window)', '1s', { minMs: 100, maxMs: 3_600_000 }))
      .addOption(replayOption('serve a recording (ctop record) instead of the kernel, one window per --every')),
  )).action((f: ProbeSettings & { occupancy: OccupancyChoice; censusBudget: number; listen: string; allowRemote?: boolean; topPorts: number; every: number; replay?: string }) =>
    runServe({
      ...probeSettings(f),
      ...occupancySettings(f),
      ...(f.replay !== undefined ? { replay: f.replay } : {}),
      listen: parseListen(f.listen),
      allowRemote: f.allowRemote === true,
      topPorts: f.topPorts,
      everyMs: f.every,
    }),
  );
}
