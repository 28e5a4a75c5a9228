/**
 * `ctop serve` as a root process other hosts may reach: a non-loopback
 * address only with --allow-remote, a cap on open connections, and slow or
 * idle clients cut off by the server's own header and idle timeouts, while
 * a real scrape still works afterwards.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { SERVE_LIMITS } from '../../src/util/listen.js';
import { expectOneLineError, runCli, startCli, waitNoCtopPrograms, type CliResult } from '../support/cli.js';
import { freePort } from '../support/prometheus.js';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function open(port: number): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const t0 = Date.now();
    const closed = new Promise<number>((r) => socket.on('close', () => r(Date.now() - t0)));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

describe('ctop serve limits', () => {
  let ctop: { proc: ChildProcess; done: Promise<CliResult> } | undefined;
  const sockets: Socket[] = [];

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    if (ctop && ctop.proc.exitCode === null) {
      ctop.proc.kill('SIGTERM');
      await ctop.done;
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('a non-loopback address needs --allow-remote', async () => {
    const port = await freePort();
    const r = runCli(['serve', '--listen', `0.0.0.0:${port}`]);
    expect(r.code).toBe(2);
    expect(expectOneLineError(r.stderr).message).toMatch(/is not a loopback address/);
  });

  it('with --allow-remote it serves; connections are capped; slow and idle clients are cut off; scrapes still work', async () => {
    const port = await freePort();
    ctop = await startCli(['serve', '--listen', `0.0.0.0:${port}`, '--allow-remote', '--every', '1s'], /serving metrics on/);
    const get = async (): Promise<number> => (await fetch(`http://127.0.0.1:${port}/metrics`)).status;
    expect(await get()).toBe(200);

    // 1. many idle connections: the server keeps at most maxConnections of them
    const many = await Promise.all(Array.from({ length: SERVE_LIMITS.maxConnections + 36 }, () => open(port).catch(() => undefined)));
    for (const m of many) if (m) sockets.push(m.socket);
    await sleep(1000);
    const stillOpen = many.filter((m) => m && !m.socket.destroyed && m.socket.readyState === 'open');
    // a closed-on-accept socket has seen its 'close' by now
    const closedEarly = await Promise.all(many.map((m) => (m ? Promise.race([m.closed.then(() => true), sleep(10).then(() => false)]) : true)));
    expect(closedEarly.filter(Boolean).length).toBeGreaterThanOrEqual(36);
    expect(stillOpen.length).toBeLessThanOrEqual(SERVE_LIMITS.maxConnections);
    // ... and the silent ones are closed after headersTimeoutMs, not held for minutes
    const idleClosedMs = await Promise.race([Promise.all(many.filter(Boolean).map((m) => m!.closed)), sleep(SERVE_LIMITS.headersTimeoutMs + 3000).then(() => null)]);
    expect(idleClosedMs, 'idle connections still open').not.toBeNull();

    // 2. slowloris: headers a byte at a time never finish; the server closes it after headersTimeout
    const slow = await open(port);
    sockets.push(slow.socket);
    slow.socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => slow.socket.writable && slow.socket.write('X'), 500);
    const slowClosedMs = await Promise.race([slow.closed, sleep(SERVE_LIMITS.headersTimeoutMs + 5000).then(() => null)]);
    clearInterval(drip);
    expect(slowClosedMs, 'slow client still connected').not.toBeNull();
    expect(slowClosedMs!).toBeLessThanOrEqual(SERVE_LIMITS.headersTimeoutMs + 1000);

    // 3. the exporter is still there for a real scrape
    expect(await get()).toBe(200);
  }, 60_000);
});
