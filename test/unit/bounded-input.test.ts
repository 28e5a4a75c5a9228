/**
 * Input limits hold while reading, not after: devices and oversized files
 * are refused before their bytes are read, a pipe is cut at the limit, JSON
 * nested past any ctop document is refused before it is parsed, and a
 * replay stuck at a bad line reads the file again only once it changed.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { InputLimitError, jsonDepth, readFileBounded } from '../../src/util/boundedRead.js';
import { MAX_RECORDING_BYTES, readRecording } from '../../src/io/recording.js';
import { loadRecordingPrefix, ReplayWindows } from '../../src/source/replay.js';
import { makeSnapshots, recordingText } from './recordingFixture.js';

const dir = mkdtempSync(join(tmpdir(), 'ctop-bounded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readFileBounded', () => {
  it('refuses /dev/zero at once instead of growing without end', () => {
    const t0 = Date.now();
    expect(() => readRecording('/dev/zero')).toThrow(/\/dev\/zero: it is a device, not a file/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
  it('refuses a file over the limit from its size, before reading it', () => {
    const f = join(dir, 'sparse.jsonl');
    const fd = openSync(f, 'w');
    ftruncateSync(fd, MAX_RECORDING_BYTES + 1); // sparse: no bytes to read, only a size
    closeSync(fd);
    const t0 = Date.now();
    expect(() => readRecording(f)).toThrow(/is \d+ bytes, more than the \d+ allowed/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
  it('cuts a pipe at the limit', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `yes > ${fifo}`]);
    try {
      expect(() => readFileBounded(fifo, 4 * 1024 * 1024)).toThrow(InputLimitError);
    } finally {
      writer.kill('SIGKILL');
    }
  });
});

describe('nesting', () => {
  it('jsonDepth counts brackets outside strings and stops early', () => {
    expect(jsonDepth('{"a":[1,{"b":"[[[["}]}', 64)).toBe(3);
    expect(jsonDepth('['.repeat(1_000_000), 64)).toBe(65);
  });
  it('a recording line nested 100,000 deep is a one-line error, not a stack overflow later', () => {
    const snaps = makeSnapshots(2);
    const lines = recordingText(snaps).trimEnd().split('\n');
    lines[1] = lines[1]!.replace(/^\{/, `{"x":${'['.repeat(100_000)}${']'.repeat(100_000)},`);
    const f = join(dir, 'deep.jsonl');
    writeFileSync(f, `${lines.join('\n')}\n`);
    expect(() => readRecording(f)).toThrow(/line 2 nests deeper than 64 levels/);
  });
});

describe('replay at a bad last line', () => {
  it('reads the file again only when it changed', () => {
    const f = join(dir, 'replay.jsonl');
    const snaps = makeSnapshots(3);
    writeFileSync(f, `${recordingText(snaps.slice(0, 2))}{"schema": "ctop.snap\n`);
    let loads = 0;
    const r = new ReplayWindows(f, (file) => {
      loads++;
      return loadRecordingPrefix(file);
    });
    r.next();
    r.next();
    for (let i = 0; i < 5; i++) expect(() => r.next()).toThrow(/cut short or corrupt/);
    expect(loads).toBe(1);
    writeFileSync(f, recordingText(snaps));
    expect(r.next()?.startedAt).toBe(snaps[2]!.startedAt);
    expect(loads).toBe(2);
  });
});
