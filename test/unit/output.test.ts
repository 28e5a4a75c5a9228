import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openOutput, writeOutput } from '../../src/io/output.js';
import { CtopError, ExitCode } from '../../src/errors.js';
import { closeSync, writeSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'ctop-output-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusal(f: () => unknown): CtopError {
  try {
    f();
  } catch (e) {
    if (e instanceof CtopError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('output files root writes', () => {
  it('writes and overwrites a regular file from its start', () => {
    const f = join(dir, 'plain.txt');
    writeOutput(f, 'a long first text\n');
    writeOutput(f, 'short\n');
    expect(readFileSync(f, 'utf8')).toBe('short\n');
    const fd = openOutput(f);
    writeSync(fd, 'x');
    closeSync(fd);
    expect(readFileSync(f, 'utf8')).toBe('x');
  });

  it('refuses a symbolic link and leaves its target untouched', () => {
    const target = join(dir, 'victim');
    writeFileSync(target, 'precious\n');
    const link = join(dir, 'planted');
    symlinkSync(target, link);
    const e = refusal(() => writeOutput(link, 'overwritten'));
    expect(e.message).toMatch(/symbolic link/);
    expect(e.exitCode).toBe(ExitCode.failure);
    const u = refusal(() => openOutput(link));
    expect(u.exitCode).toBe(ExitCode.usage);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });

  it('refuses a FIFO at once instead of hanging, and a directory', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(refusal(() => openOutput(fifo)).message).toMatch(/FIFO/);
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    expect(refusal(() => writeOutput(sub, 'x')).message).toMatch(/directory/);
  });

  it('names a missing directory', () => {
    expect(refusal(() => writeOutput(join(dir, 'nope', 'f'), 'x')).message).toMatch(/no such directory/);
  });
});
