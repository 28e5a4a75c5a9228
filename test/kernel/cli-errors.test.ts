/**
 * Bad input and a bad environment: one line naming the problem, a hint, a
 * distinct non-zero exit code, no stack trace, nothing left attached.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { ctopPrograms, expectOneLineError, runCli, waitNoCtopPrograms } from '../support/cli.js';

afterEach(async () => {
  expect(await waitNoCtopPrograms()).toEqual([]);
});

describe('bad input', () => {
  it('unknown flag', () => {
    const r = runCli(['snapshot', '--frobnicate']);
    expect(r.code).toBe(ExitCode.usage);
    expect(expectOneLineError(r.stderr).message).toBe("ctop: unknown option '--frobnicate'");
  });

  it('unknown command', () => {
    const r = runCli(['frobnicate']);
    expect(r.code).toBe(ExitCode.usage);
    expectOneLineError(r.stderr);
  });

  it('malformed --duration', () => {
    const r = runCli(['snapshot', '--duration', 'soon']);
    expect(r.code).toBe(ExitCode.usage);
    const e = expectOneLineError(r.stderr);
    expect(e.message).toBe("ctop: --duration: 'soon' is not a duration");
    expect(e.hint).toMatch(/5s/);
  });

  it('unknown --tier value', () => {
    const r = runCli(['snapshot', '--tier', 'magic']);
    expect(r.code).toBe(ExitCode.usage);
    expect(expectOneLineError(r.stderr).message).toMatch(/--tier <tier>' argument 'magic' is invalid/);
  });

  it('--netns naming nothing', () => {
    const r = runCli(['snapshot', '--netns', 'ctop-no-such-namespace']);
    expect(r.code).toBe(ExitCode.usage);
    expect(expectOneLineError(r.stderr).message).toMatch(/--netns: no network namespace at 'ctop-no-such-namespace'/);
  });

  it('--help and --version exit 0', () => {
    expect(runCli(['--help']).code).toBe(0);
    expect(runCli(['--version']).stdout.trim()).toBe('0.1.0');
  });
});

describe('bad environment', () => {
  it('not root: names the missing capabilities, loads nothing', () => {
    // setpriv drops to nobody with no capabilities, as an unprivileged user runs it
    const r = runCli(['snapshot', '--duration', '1s'], { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'] });
    expect(r.code).toBe(ExitCode.privileges);
    const e = expectOneLineError(r.stderr);
    expect(e.message).toBe('ctop: ctop needs root; this process lacks CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN');
    expect(e.hint).toMatch(/sudo/);
  });

  it('missing BTF with the BPF tier forced', () => {
    const r = runCli(['snapshot', '--duration', '1s', '--tier', 'netfilter'], { env: { CTOP_BTF_PATH: '/nonexistent/vmlinux' } });
    expect(r.code).toBe(ExitCode.kernel);
    expect(expectOneLineError(r.stderr).message).toMatch(/netfilter tier was forced but the kernel refused it: this kernel exposes no BTF/);
    expect(ctopPrograms()).toEqual([]);
  });

  it('missing BTF without forcing: falls back to statistics and says why', () => {
    const r = runCli(['doctor', '--json'], { env: { CTOP_BTF_PATH: '/nonexistent/vmlinux' } });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { probe: { tier: string; refused: { tier: string; reason: string }[] }; kernel: { btf: string | null } };
    expect(report.kernel.btf).toBeNull();
    expect(report.probe.tier).toBe('stats');
    expect(report.probe.refused[0]?.reason).toMatch(/no BTF/);
  });
});
