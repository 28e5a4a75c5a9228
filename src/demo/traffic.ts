/**
 * The demo's traffic, all inside its namespace and all bounded in count and
 * time: a TCP service holding connections (tools/loadgen.mjs), a UDP service
 * over a port range whose flows are replied and so ASSURED (tools/bin/flood
 * stream), then a cache port flooded with new flows, one bounded round a
 * second (tools/bin/flood new), until stopped or the deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CtopError, ExitCode } from '../errors.js';
import { DEMO_PORTS, DEMO_SERVER_ADDR, type DemoPlan } from './plan.js';

export const FLOOD = fileURLToPath(new URL('../../tools/bin/flood', import.meta.url));
export const LOADGEN = fileURLToPath(new URL('../../tools/loadgen.mjs', import.meta.url));

/** The longest one flood process may run. */
const STREAM_MAX_MS = 120_000;
const ROUND_MS = 1000;
const READY_TIMEOUT_MS = 15_000;
const HOLD_PAST_DEADLINE_MS = 60_000;

export type DemoPhase = 'starting' | 'tcp' | 'streams' | 'cache flood' | 'stopped';

export interface DemoTraffic {
  /** Ends when the traffic stops (deadline, stop() or a failure). */
  readonly done: Promise<void>;
  readonly phase: () => DemoPhase;
  /** What failed, in the tools' words; empty when nothing did. */
  readonly errors: string[];
  /** Kills every traffic process. Synchronous: safe in signal and exit handlers. */
  stop(): void;
}

export function checkTrafficTools(): void {
  if (!existsSync(FLOOD)) {
    throw new CtopError(`demo: the traffic tool ${FLOOD} is missing`, 'build it with `npm run build:tools` (scripts/setup.sh does)', ExitCode.failure);
  }
}

export function startDemoTraffic(ns: string, plan: DemoPlan, lifeMs: number): DemoTraffic {
  const children = new Set<ChildProcess>();
  const errors: string[] = [];
  let phase: DemoPhase = 'starting';
  let stopped = false;
  const deadline = performance.now() + lifeMs;
  let wake: () => void = () => {};

  const inNs = (argv: string[]): ChildProcess => {
    // `ip netns exec` execs the command, so the child's pid is the tool's own
    const c = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c);
    c.once('exit', () => children.delete(c));
    return c;
  };

  /** Runs a tool to its end; resolves with its last JSON line. */
  const runTool = (argv: string[]): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const c = inNs(argv);
      let out = '';
      let err = '';
      c.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      c.once('error', (e) => reject(e));
      c.once('close', (code, signal) => {
        if (stopped) return resolve({});
        const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
        if (code !== 0 || line === undefined) {
          reject(new Error(`${argv[0]?.split('/').pop()} exited ${code ?? signal}: ${err.trim().split('\n')[0] ?? ''}`));
          return;
        }
        resolve(JSON.parse(line) as Record<string, unknown>);
      });
    });

  /** Starts a tool that stays up; resolves once it prints `word`. */
  const startTool = (argv: string[], word: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const c = inNs(argv);
      let out = '';
      let err = '';
      const t = setTimeout(() => reject(new Error(`${argv.join(' ')}: not ${word} within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      c.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.split('\n').includes(word)) {
          clearTimeout(t);
          resolve();
        }
      });
      c.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      c.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
      c.once('close', (code) => {
        clearTimeout(t);
        if (!stopped) reject(new Error(`loadgen exited ${code} before "${word}": ${err.trim().split('\n')[0] ?? ''}`));
      });
    });

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  const drive = async (): Promise<void> => {
    const lifeLeftMs = (): number => Math.max(1, Math.floor(deadline - performance.now()));
    const node = process.execPath;
    phase = 'tcp';
    // the TCP service and its clients stay up until stop(), a while past the
    // flood's deadline at most: their entries are part of the full table
    const holdMs = String(lifeMs + HOLD_PAST_DEADLINE_MS);
    await startTool([node, LOADGEN, '--listen-tcp', String(DEMO_PORTS.tcp), '--max-ms', holdMs], 'listening');
    if (stopped) return;
    await startTool(
      [node, LOADGEN, '--tcp', `${DEMO_SERVER_ADDR}:${DEMO_PORTS.tcp}`, '--flows', String(plan.heldTcp), '--hold', '--max-ms', holdMs],
      'ready',
    );
    if (stopped) return;
    phase = 'streams';
    if (plan.streamFlows > 0) {
      await runTool([
        FLOOD, 'stream', '--dst', DEMO_SERVER_ADDR, '--port', String(DEMO_PORTS.rangeUdpFirst), '--ports', String(DEMO_PORTS.rangeUdpCount),
        '--count', String(plan.streamFlows), '--max-ms', String(Math.min(STREAM_MAX_MS, lifeLeftMs())),
      ]);
    }
    phase = 'cache flood';
    // the stream walk used flows [0, streamFlows) on other ports; the cache's
    // rounds walk on from 0 too, each round a new stretch of sources
    for (let round = 0; !stopped && performance.now() < deadline; round++) {
      const t0 = performance.now();
      await runTool([
        FLOOD, 'new', '--dst', DEMO_SERVER_ADDR, '--port', String(DEMO_PORTS.cacheUdp), '--count', String(plan.cacheFlowsPerSec),
        '--start', String(round * plan.cacheFlowsPerSec), '--max-ms', String(Math.min(ROUND_MS - 100, lifeLeftMs())),
      ]);
      const left = ROUND_MS - (performance.now() - t0);
      if (left > 0 && !stopped) await sleep(Math.min(left, deadline - performance.now()));
    }
  };

  const stop = (): void => {
    stopped = true;
    phase = 'stopped';
    wake();
    for (const c of children) {
      try {
        c.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  };

  const done = drive().then(
    () => stop(),
    (e: unknown) => {
      if (!stopped) errors.push(e instanceof Error ? e.message : String(e));
      stop();
    },
  );
  return { done, phase: () => phase, errors, stop };
}
