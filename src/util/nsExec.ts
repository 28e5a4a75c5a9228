/**
 * Runs a command in the current network namespace or, with netnsPath, inside
 * another one through nsenter(1). Synchronous and bounded in time; failures
 * become one-line Errors carrying the command's first stderr line.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';

/**
 * Where ctop takes its tools from (nft, iptables, conntrack, nsenter, sh):
 * fixed system directories, never PATH, which whoever starts root's ctop
 * (sudo with a kept PATH, a service file) may point at a directory another
 * user writes. A tool found there must be root's and writable by no one else.
 */
const SYSTEM_TOOL_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'] as const;

const resolved = new Map<string, string>();

/** The absolute path of a system tool, or an NsExecError naming the directories searched. */
function systemTool(name: string): string {
  const known = resolved.get(name);
  if (known) return known;
  if (name.includes('/')) throw new NsExecError(`${name}: ctop runs tools by name from ${SYSTEM_TOOL_DIRS.join(', ')} only`, '', null);
  for (const dir of SYSTEM_TOOL_DIRS) {
    const path = `${dir}/${name}`;
    let st;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    if (!st.isFile() || (st.mode & 0o111) === 0) continue;
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) throw new NsExecError(`${path}: not owned by root or writable by others; ctop will not run it`, '', null);
    resolved.set(name, path);
    return path;
  }
  throw new NsExecError(`${name}: command not found in ${SYSTEM_TOOL_DIRS.join(', ')}`, '', null);
}

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
  const tool = systemTool(cmd);
  const [file, argv] = o.netnsPath ? [systemTool('nsenter'), [`--net=${o.netnsPath}`, '--', tool, ...args]] : [tool, args];
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
