/** `--listen HOST:PORT` parsing, and the loopback rule for exposing metrics. */
import { isIP } from 'node:net';
import { CtopError, ExitCode } from '../errors.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(text: string): ListenAddress {
  // [v6]:port, v4:port or name:port
  const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const m = v6 ?? /^([^:\s[\]]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535 || (v6 !== null && isIP(m[1]!) !== 6)) {
    throw new CtopError(`--listen: '${text}' is not HOST:PORT`, 'write it as 127.0.0.1:9633 or [::1]:9633', ExitCode.usage);
  }
  return { host: m[1]!, port };
}

/** 127.0.0.0/8, ::1 and localhost: only this host can connect. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

/** Metrics name every port and namespace on the host: exposing them beyond loopback must be asked for. */
export function checkExposure(addr: ListenAddress, allowRemote: boolean): void {
  if (isLoopback(addr.host) || allowRemote) return;
  throw new CtopError(
    `--listen ${addr.host}:${addr.port} is not a loopback address; the metrics would be reachable from other hosts`,
    'add --allow-remote to listen there on purpose (and firewall it), or listen on 127.0.0.1',
    ExitCode.usage,
  );
}

/**
 * The metrics server's own limits, so that neither many connections nor slow
 * ones (headers sent a byte at a time, sockets left open) can tie up the root
 * process that holds the BPF programs. A scraper needs one short request per
 * interval; Prometheus reconnects when a kept-alive socket was closed.
 */
export const SERVE_LIMITS = {
  /** Connections open at once; more are closed on accept. */
  maxConnections: 64,
  /** A new connection must have sent a whole request head (line and headers) within this time. */
  headersTimeoutMs: 5_000,
  /** A kept-alive connection must have sent the next whole request head within this time of the last response. */
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 8 * 1024,
  maxHeadersCount: 64,
} as const;

/** createServer() options that must be given at creation. */
export const SERVER_OPTIONS = { maxHeaderSize: SERVE_LIMITS.maxHeaderBytes } as const;

/**
 * The limits set after creation. The deadlines are ctop's own timers per
 * socket: Node's headersTimeout only starts once a request has begun (a
 * socket that sends nothing is never checked), and with its connection
 * checker on, an idle socket's timeout did not fire at all (Node 20).
 */
export function applyServerLimits(server: import('node:http').Server): void {
  server.maxConnections = SERVE_LIMITS.maxConnections;
  server.maxHeadersCount = SERVE_LIMITS.maxHeadersCount;
  server.keepAliveTimeout = SERVE_LIMITS.keepAliveTimeoutMs;
  const deadlines = new WeakMap<import('node:net').Socket, NodeJS.Timeout>();
  const arm = (socket: import('node:net').Socket, ms: number): void => {
    clearTimeout(deadlines.get(socket));
    deadlines.set(socket, setTimeout(() => socket.destroy(), ms).unref());
  };
  server.on('connection', (socket: import('node:net').Socket) => {
    arm(socket, SERVE_LIMITS.headersTimeoutMs);
    socket.once('close', () => clearTimeout(deadlines.get(socket)));
  });
  server.on('request', (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    // the head arrived: the request is served; afterwards the next head has keepAliveTimeoutMs
    clearTimeout(deadlines.get(req.socket));
    res.once('finish', () => arm(req.socket, SERVE_LIMITS.keepAliveTimeoutMs));
  });
}
