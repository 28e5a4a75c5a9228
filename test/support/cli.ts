/** Runs the built CLI (dist/) as a user would, and checks what it leaves behind. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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

/** Starts the CLI in the background; resolves once stderr contains `readyPattern`. */
export function startCli(args: string[], readyPattern: RegExp, timeoutMs = 30_000): Promise<{ proc: ChildProcess; done: Promise<CliResult> }> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

/** The kernel frees programs after the last fd closes, asynchronously (RCU): poll briefly. */
export async function waitNoCtopPrograms(timeoutMs = 5000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let left = ctopPrograms();
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    left = ctopPrograms();
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
