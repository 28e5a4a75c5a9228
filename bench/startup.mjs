#!/usr/bin/env node
// How long ctop takes to start, and what each command loads.
//
//   npx tsc -p tsconfig.json && node bench/startup.mjs [--runs 30]
//   (as root, under the kernel lock, `doctor` is measured too: it loads the probe)
//
// Wall time of `bin/ctop --version` (a fresh node process each run: what a
// shell pays), median and spread over --runs. Then, for `--version`, `doctor`,
// `top --help` and `serve --help`, the modules the process loaded, read by a
// module load hook (Node's module.register): ctop's own files and the
// packages, so a command that loads what it does not use shows.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CTOP = join(ROOT, 'bin', 'ctop');
const i = process.argv.indexOf('--runs');
const RUNS = i > 0 ? Number(process.argv[i + 1]) : 30;

const dir = mkdtempSync(join(tmpdir(), 'ctop-startup-'));
try {
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    "import { appendFileSync } from 'node:fs';\n" +
      'export async function load(url, context, next) {\n' +
      '  appendFileSync(process.env.CTOP_BENCH_LOADED, `${url}\\n`);\n' +
      '  return next(url, context);\n' +
      '}\n',
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);

  const wallMs = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, [CTOP, '--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    wallMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  wallMs.sort((a, b) => a - b);
  const q = (p) => wallMs[Math.min(wallMs.length - 1, Math.floor(p * wallMs.length))].toFixed(1);
  // node itself, for scale: the floor any CLI on this machine pays
  const bare = [];
  for (let r = 0; r < 10; r++) {
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, ['-e', '0']);
    bare.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  bare.sort((a, b) => a - b);
  console.log(`ctop --version: median ${q(0.5)} ms (min ${q(0)}, p90 ${q(0.9)}) over ${RUNS} runs; bare node -e 0: median ${bare[5].toFixed(1)} ms`);

  const cases = [['--version'], ['top', '--help'], ['serve', '--help']];
  if (process.getuid?.() === 0) cases.push(['doctor']);
  else console.log('doctor: not measured (needs root)');
  for (const argv of cases) {
    const log = join(dir, 'loaded.txt');
    writeFileSync(log, '');
    try {
      execFileSync(process.execPath, ['--import', pathToFileURL(register).href, CTOP, ...argv], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, CTOP_BENCH_LOADED: log },
        timeout: 60_000,
      });
    } catch (e) {
      console.log(`ctop ${argv.join(' ')}: exit ${e.status} (${String(e.stderr).split('\n')[0]})`);
    }
    const urls = readFileSync(log, 'utf8').split('\n').filter((u) => u.startsWith('file:'));
    const own = urls.filter((u) => u.includes('/dist/')).map((u) => u.slice(u.indexOf('/dist/') + 6));
    const pkgs = [...new Set(urls.filter((u) => u.includes('/node_modules/')).map((u) => u.split('/node_modules/').pop().split('/')[0]))];
    const commands = own.filter((f) => f.startsWith('commands/')).map((f) => f.slice(9, -3));
    console.log(`ctop ${argv.join(' ')}: ${own.length} ctop modules (commands: ${commands.join(', ') || 'none'}); packages: ${pkgs.join(', ') || 'none'}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
