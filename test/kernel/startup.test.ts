/**
 * Each command's module loads only when that command runs: what the built
 * CLI loads is read by a module load hook (Node's module.register), as
 * bench/startup.mjs does for its figures. Needs no root and loads nothing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ctop-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hooks = join(dir, 'hooks.mjs');
writeFileSync(
  hooks,
  "import { appendFileSync } from 'node:fs';\n" +
    'export async function load(url, context, next) {\n' +
    '  appendFileSync(process.env.CTOP_TEST_LOADED, `${url}\\n`);\n' +
    '  return next(url, context);\n' +
    '}\n',
);
const register = join(dir, 'register.mjs');
writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);

/** The command modules and packages `ctop ARGS` loaded, and what it printed. */
function loads(args: string[]): { commands: string[]; packages: string[]; stdout: string; code: number | null } {
  const log = join(dir, `loaded-${args.join('-')}.txt`);
  writeFileSync(log, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CTOP_TEST_LOADED: log },
    timeout: 30_000,
  });
  const urls = readFileSync(log, 'utf8').split('\n').filter((u) => u.startsWith('file:'));
  const commands = urls.filter((u) => u.includes('/dist/commands/')).map((u) => u.split('/dist/commands/')[1]!.replace(/\.js$/, '')).sort();
  const packages = [...new Set(urls.filter((u) => u.includes('/node_modules/')).map((u) => u.split('/node_modules/').pop()!.split('/')[0]!))].sort();
  return { commands, packages, stdout: r.stdout, code: r.status };
}

describe('commands load lazily', () => {
  it('--version loads no command, neither blessed nor prom-client', () => {
    const r = loads(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(r.commands).toEqual([]);
    expect(r.packages).toEqual(['commander']);
  });

  it('a command loads its own module and the shared options only; only top loads blessed, only serve prom-client', () => {
    expect(loads(['doctor', '--help'])).toMatchObject({ code: 0, commands: ['doctor', 'options'], packages: ['commander'] });
    const top = loads(['top', '--help']);
    expect(top.commands).not.toContain('serve');
    expect(top.packages).toContain('blessed');
    expect(top.packages).not.toContain('prom-client');
    const serve = loads(['serve', '--help']);
    expect(serve.commands).not.toContain('top');
    expect(serve.packages).toContain('prom-client');
    expect(serve.packages).not.toContain('blessed');
  });

  it('--help still lists every command', () => {
    const r = loads(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['snapshot', 'doctor', 'top', 'record', 'diff', 'report', 'export-csv', 'serve', 'census', 'advise', 'notrack', 'validate']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    }
  });
});
