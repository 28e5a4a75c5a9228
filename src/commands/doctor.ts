/**
 * `ctop doctor`: what this kernel offers, which probes attach (and the
 * kernel's own words for those that do not), whether conntrack is active in
 * each namespace and which rules keep it on.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { btfPath, btfProblem, checkPrivileges } from '../preflight.js';
import { KernelSource } from '../source/kernelSource.js';
import { thisHost } from '../source/host.js';
import { addProbeOptions, jsonOption, probeSettings, type ProbeSettings } from './options.js';
import { readRuleset } from '../source/ruleset.js';
import { doctorReport, type DoctorInput } from '../model/doctor.js';
import { formatDoctor } from '../format/doctorText.js';
import { onTermination } from '../util/signals.js';
import { jsonForTerminal } from '../util/sanitize.js';

export interface DoctorOptions extends ProbeSettings {
  json: boolean;
}

function lockdown(): string | null {
  // "none [integrity] confidentiality": the bracketed word is in force.
  const p = '/sys/kernel/security/lockdown';
  if (!existsSync(p)) return null;
  const m = /\[(\w+)\]/.exec(readFileSync(p, 'utf8'));
  return m?.[1] ?? null;
}

/** Reads what the report needs: one sample, each watched namespace's ruleset, the kernel's BTF and lockdown. */
function gather(source: KernelSource): DoctorInput {
  const here = thisHost();
  return {
    sample: source.sample(),
    rulesets: new Map(source.watchedRefs().map((r) => [r.inode, readRuleset(r.path)])),
    host: here.host,
    kernel: { release: here.kernel, btf: btfProblem() ? null : btfPath(), lockdown: lockdown() },
  };
}

async function runDoctor(o: DoctorOptions): Promise<void> {
  checkPrivileges();
  const source = new KernelSource({ ...o, rescanMs: 60_000 });
  const stopListening = onTermination(() => source.close());
  try {
    await source.start();
    const report = doctorReport(gather(source));
    process.stdout.write(o.json ? `${jsonForTerminal(report)}\n` : `${formatDoctor(report)}\n`);
  } finally {
    source.close();
    stopListening();
  }
}

export function registerDoctor(program: Command): void {
  addProbeOptions(
    program
      .command('doctor')
      .description('what this kernel offers, which probes attach and why others do not, what keeps conntrack on')
      .addOption(jsonOption('ctop.doctor/v1')),
  ).action((opts: ProbeSettings & { json?: boolean }) => runDoctor({ ...probeSettings(opts), json: opts.json === true }));
}
