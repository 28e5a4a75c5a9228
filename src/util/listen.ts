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
