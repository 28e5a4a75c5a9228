import { describe, expect, it } from 'vitest';
import { progress } from '../../src/util/progress.js';

function stream(isTTY: boolean): NodeJS.WriteStream & { out: string } {
  const s = { isTTY, columns: 60, out: '', write(t: string) { s.out += t; return true; } };
  return s as unknown as NodeJS.WriteStream & { out: string };
}

describe('progress', () => {
  it('a bar redrawn in place on a terminal, ended by a newline', () => {
    const s = stream(true);
    const p = progress(s);
    p.step(1, 4, 'fill 1.0%');
    p.step(2, 4, 'fill 2.0%');
    p.end();
    expect(s.out).toBe('\r\x1b[2K[######------------------] 1/4 fill 1.0%\r\x1b[2K[############------------] 2/4 fill 2.0%\n');
  });
  it('one plain line per step otherwise', () => {
    const s = stream(false);
    const p = progress(s);
    p.step(1, 2, 'a');
    p.end();
    expect(s.out).toBe('ctop: window 1/2: a\n');
  });
});
