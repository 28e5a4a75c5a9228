/**
 * Ports on the command line of `notrack apply|revert`, `validate` and the
 * live screen: PORT, PROTO/PORT, PROTO/LO-HI (an inclusive range). A bare
 * port takes --proto (udp when --proto is not given). Every mistake is a
 * usage error (exit 2) before anything is loaded. Pure.
 */
import { CtopError, ExitCode } from '../errors.js';
import { portText, type L4 } from '../advise/rules.js';

export interface PortSpec {
  proto: L4;
  port: number;
  /** = port for a single port */
  portEnd: number;
}

const HINT = 'write PORT, PROTO/PORT or PROTO/LO-HI with PROTO tcp or udp and ports 1-65535, e.g. udp/5000 or udp/60000-60100';

function port(text: string, spec: string, what: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw new CtopError(`${what}: '${spec}' is not a port: ${text === '' ? 'a port is missing' : `${text} is outside 1-65535`}`, HINT, ExitCode.usage);
  return n;
}

/**
 * @param protoFlag --proto as given (undefined when absent): a spec that names
 *   another protocol contradicts it
 */
export function parsePortSpecs(specs: string[], protoFlag: L4 | undefined, what: string): PortSpec[] {
  if (specs.length === 0) throw new CtopError(`${what}: no port given`, 'name ports: `5000`, `udp/5000 tcp/80` or a range `udp/60000-60100`', ExitCode.usage);
  const out: PortSpec[] = [];
  for (const s of specs) {
    const m = /^(?:([a-z0-9]+)\/)?([^/]*)$/.exec(s);
    if (!m) throw new CtopError(`${what}: '${s}' is not a port`, HINT, ExitCode.usage);
    const named = m[1];
    if (named !== undefined && named !== 'tcp' && named !== 'udp') throw new CtopError(`${what}: '${s}' is not a port: protocol ${named} has no ports ctop can exempt`, HINT, ExitCode.usage);
    if (named !== undefined && protoFlag !== undefined && named !== protoFlag) {
      throw new CtopError(`${what}: '${s}' names ${named} but --proto is ${protoFlag}`, 'drop --proto (PROTO/PORT says it) or make them agree', ExitCode.usage);
    }
    const proto: L4 = (named as L4 | undefined) ?? protoFlag ?? 'udp';
    const body = m[2]!;
    const dash = body.indexOf('-');
    let lo: number;
    let hi: number;
    if (dash < 0) {
      lo = hi = port(body, s, what);
    } else {
      const [a, b] = [body.slice(0, dash), body.slice(dash + 1)];
      if (a === '' || b === '') throw new CtopError(`${what}: '${s}' is an empty range`, 'a range needs both ends: PROTO/LO-HI, e.g. udp/60000-60100', ExitCode.usage);
      lo = port(a, s, what);
      hi = port(b, s, what);
      if (hi < lo) throw new CtopError(`${what}: '${s}' is a reversed range (${lo} > ${hi})`, `write the low port first: ${proto}/${hi}-${lo}`, ExitCode.usage);
    }
    const next: PortSpec = { proto, port: lo, portEnd: hi };
    const same = out.find((o) => o.proto === proto && o.port === lo && o.portEnd === hi);
    if (same) continue;
    const clash = out.find((o) => o.proto === proto && o.port <= hi && o.portEnd >= lo);
    if (clash) throw new CtopError(`${what}: ${portText(next)} overlaps ${portText(clash)}`, 'name each port once: merge them into one range or split the range', ExitCode.usage);
    out.push(next);
  }
  return out;
}
