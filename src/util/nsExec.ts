/**
 * Runs a command in the current network namespace or, with netnsPath, inside
 * another one through nsenter(1). Synchronous and bounded in time; failures
 * become one-line Errors carrying the command's first stderr line.
 */
import { execFileSync } from 'node:child_process';

export interface NsExecOptions {
  netnsPath?: string;
  input?: string;
  timeoutMs?: number;
}

export class NsExecError extends Error {
  constructor(message: string, readonly stderr: string, readonly status: number | null) {
    super(message);
    this.name = 'NsExecError';
  }
}

export function nsExec(cmd: string, args: string[], o: NsExecOptions = {}): string {
  const [file, argv] = o.netnsPath ? ['nsenter', [`--net=${o.netnsPath}`, '--', cmd, ...args]] : [cmd, args];
  const timeoutMs = o.timeoutMs ?? 10_000;
  try {
    return execFileSync(file, argv, {
      encoding: 'utf8',
      input: o.input,
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024, // `nft -j list ruleset` of a large ruleset
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; status?: number | null; signal?: string | null };
    if (err.code === 'ENOENT') throw new NsExecError(`${file}: command not found`, '', null);
    if (err.code === 'ETIMEDOUT' || err.signal === 'SIGKILL') throw new NsExecError(`${cmd}: timed out after ${timeoutMs / 1000} s`, '', null);
    const stderr = typeof err.stderr === 'string' ? err.stderr.trim() : '';
    throw new NsExecError(`${cmd}: ${stderr.split('\n')[0] || err.message.split('\n')[0]}`, stderr, err.status ?? null);
  }
}
