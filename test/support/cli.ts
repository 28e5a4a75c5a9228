/** Runs the built CLI (dist/) as a user would, and checks what it leaves behind. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'bin', 'ctop');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; prefix?: string[]; timeoutMs?: number } = {}): CliResult {
  const argv = [...(opts.prefix ?? []), process.execPath, CLI, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs a long command (the qemu guests: 15-90 s) without blocking the test
 * worker's event loop: a spawnSync that long starves vitest's RPC with the
 * main process ("Timeout calling onTaskUpdate"), which fails the file even
 * when its test passed. The child is killed at `timeoutMs`.
 */
export function runLong(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<CliResult> {
  return new Promise((resolve) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const started = new Set<ChildProcess>();

/** Kills every CLI process startCli() began that is still running: a failed
 * assertion must not leave a ctop attached for the next test. */
/** Whether a process with this PID exists (signal 0 checks without sending). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function killStrayClis(): void {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  started.clear();
}
process.on('exit', killStrayClis);

/** Starts the CLI in the background; resolves once stderr contains `readyPattern`. */
export function startCli(args: string[], readyPattern: RegExp, timeoutMs = 30_000, env?: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; done: Promise<CliResult> }> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  started.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const done = new Promise<CliResult>((resolve) => proc.on('close', (code) => resolve({ code, stdout, stderr })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`ctop did not get ready in ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (readyPattern.test(stderr)) {
        clearTimeout(timer);
        resolve({ proc, done });
      }
    });
    proc.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`ctop exited before it was ready; stderr: ${stderr}`));
    });
  });
}

/** Names of loaded BPF programs that are ctop's (the kernel keeps 15 characters of a name). */
export function ctopPrograms(): string[] {
  const r = spawnSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`bpftool prog list failed: ${r.stderr}`);
  const progs = JSON.parse(r.stdout) as { name?: string }[];
  return progs.map((p) => p.name ?? '').filter((n) => n.startsWith('ctop_'));
}

/** IDs of BPF programs and maps some live process holds an fd to (directly,
 * or through a link, whose fdinfo names its program). */
function heldBpfIds(): { progs: Set<number>; maps: Set<number> } {
  const progs = new Set<number>();
  const maps = new Set<number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue; // exited
    }
    for (const fd of fds) {
      let info: string;
      try {
        info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      const prog = /^prog_id:\s*(\d+)/m.exec(info);
      if (prog) progs.add(Number(prog[1]));
      const map = /^map_id:\s*(\d+)/m.exec(info);
      if (map) maps.add(Number(map[1]));
    }
  }
  return { progs, maps };
}

/**
 * ctop BPF programs and maps that no live process holds: what a crashed or
 * killed ctop would leak. Objects another running ctop holds (a developer's,
 * a parallel test's) are not leaks. A program still counts as held while a
 * map or link of a live process references it.
 */
export function orphanedCtopObjects(): string[] {
  const list = (kind: string): { id: number; name?: string; map_ids?: number[] }[] =>
    JSON.parse(spawnSync('bpftool', ['-j', kind, 'list'], { encoding: 'utf8', timeout: 10_000 }).stdout || '[]') as { id: number; name?: string; map_ids?: number[] }[];
  const held = heldBpfIds();
  const mapNames = new Set(['port_counts', 'tuple_inserts', 'tuple_drops', 'totals', 'drop_seen', 'cpu_anchor', 'full', 'ctop_bpf.rodata']);
  const progs = list('prog').filter((p) => (p.name ?? '').startsWith('ctop_'));
  // a map used by a held program is held through it
  for (const p of progs) if (held.progs.has(p.id)) for (const m of p.map_ids ?? []) held.maps.add(m);
  const maps = list('map').filter((m) => mapNames.has(m.name ?? ''));
  return [
    ...progs.filter((p) => !held.progs.has(p.id)).map((p) => `prog ${p.id} ${p.name}`),
    ...maps.filter((m) => !held.maps.has(m.id)).map((m) => `map ${m.id} ${m.name}`),
  ];
}

/** The kernel frees programs after the last fd closes, asynchronously (RCU): poll briefly. */
export async function waitNoCtopPrograms(timeoutMs = 5000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let left = orphanedCtopObjects();
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    left = orphanedCtopObjects();
  }
  return left;
}

/** One line naming the problem, one hint line, no stack trace. */
export function expectOneLineError(stderr: string): { message: string; hint: string } {
  const lines = stderr.trimEnd().split('\n');
  if (lines.length !== 2 || !lines[0]!.startsWith('ctop: ') || !lines[1]!.startsWith('hint: ') || /\bat .*:\d+:\d+/.test(stderr)) {
    throw new Error(`expected "ctop: …" and "hint: …", got:\n${stderr}`);
  }
  return { message: lines[0]!, hint: lines[1]! };
}
