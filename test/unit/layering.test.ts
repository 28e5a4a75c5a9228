/**
 * The layering of src/ (ARCHITECTURE.md), held against the code: every
 * import of every module is read and checked against the table of what each
 * room may import, and the import graph must have no circle. The same checker
 * runs on a small invented tree with known faults, so a checker that found
 * nothing would fail here too. Below it, native/'s C: a file that calls a
 * function (or reads a variable) another file defines depends on it; the
 * core depends on nothing outside it, and there is no circle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Which rooms a room may import (its own room always). A room is a folder
 * of src/, or a file at its top. Lower floors first: model is the ground.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  model: [],
  errors: [],
  util: ['errors'],
  native: ['model', 'errors'],
  preflight: ['errors'],
  io: ['model', 'util', 'errors'],
  source: ['model', 'native', 'io', 'preflight', 'util', 'errors'],
  advise: ['model', 'util', 'errors'],
  notrack: ['model', 'source', 'advise', 'util', 'errors'],
  format: ['model', 'advise', 'util', 'errors'],
  export: ['model', 'advise', 'format', 'util', 'errors'],
  tui: ['model', 'advise', 'format', 'util', 'errors'],
  serve: ['model', 'util', 'errors'],
  demo: ['model', 'util', 'errors'],
  commands: ['model', 'native', 'source', 'io', 'advise', 'notrack', 'demo', 'format', 'export', 'tui', 'serve', 'preflight', 'util', 'errors'],
  cli: ['util', 'errors', 'commands'],
};

/** Modules a command may share with the other commands: option declarations, nothing else. */
const SHARED_COMMAND_MODULES = new Set(['src/commands/options.ts']);

/** Packages only one place may load (the rest stays cheap to start and free of the terminal). */
const PACKAGE_HOMES: Record<string, readonly string[]> = {
  blessed: ['src/tui/screen.ts'],
  'prom-client': ['src/serve/', 'src/commands/serve.ts'],
};

/** Names only some modules may import: every window comes out of the one pipeline. */
const NAME_HOMES: Record<string, readonly string[]> = {
  buildSnapshot: ['src/source/windows.ts', 'src/model/'],
};

/** Rooms that do no I/O: no Node built-ins. */
const PURE_ROOMS = new Set(['model', 'advise']);

/**
 * Imports that break the table today, each with the change that removes it.
 * The test fails when one of them is gone, so this list only shrinks.
 */
const KNOWN: Record<string, string> = {
};

export interface Edge {
  from: string;
  to: string;
}

const SPEC = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/g;

/** The module specifiers a file names in static imports, re-exports and import() calls with a literal. */
export function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [...code.matchAll(SPEC)].map((m) => (m[1] ?? m[2])!);
}

function resolve(from: string, spec: string): string {
  return normalize(join(dirname(from), spec)).replace(/\.js$/, '.ts');
}

export function roomOf(file: string): string {
  const rest = file.slice('src/'.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? rest.replace(/\.ts$/, '') : rest.slice(0, slash);
}

/** Every broken rule and every circle in a tree given as (path -> source text). */
export function violations(files: ReadonlyMap<string, string>, known: Record<string, string> = {}): string[] {
  const out: string[] = [];
  const edges: Edge[] = [];
  for (const [file, text] of files) {
    const room = roomOf(file);
    for (const spec of specifiers(text)) {
      if (spec.startsWith('.')) {
        const to = resolve(file, spec);
        const key = `${file} -> ${to}`;
        if (key in known) continue;
        edges.push({ from: file, to });
        const toRoom = roomOf(to);
        if (!(room in MAY_IMPORT)) out.push(`${file}: room '${room}' has no entry in the layering table`);
        else if (toRoom !== room && !MAY_IMPORT[room]!.includes(toRoom)) out.push(`${key}: ${room}/ may not import ${toRoom}/`);
        else if (room === 'commands' && toRoom === 'commands' && !SHARED_COMMAND_MODULES.has(to)) {
          out.push(`${key}: a command imports another command`);
        }
        continue;
      }
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      const homes = PACKAGE_HOMES[pkg];
      if (homes && !homes.some((h) => file === h || (h.endsWith('/') && file.startsWith(h)))) out.push(`${file}: only ${homes.join(', ')} may load ${pkg}`);
      if (PURE_ROOMS.has(room) && spec.startsWith('node:')) out.push(`${file}: ${room}/ is pure but imports ${spec}`);
    }
  }
  out.push(...circles(edges));
  for (const [file, text] of files) {
    for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from/g)) {
      for (const raw of m[1]!.split(',')) {
        const name = raw.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!;
        const homes = NAME_HOMES[name];
        if (homes && !homes.some((h) => file === h || (h.endsWith('/') && file.startsWith(h)))) out.push(`${file}: only ${homes.join(', ')} may import ${name}`);
      }
    }
  }
  return out;
}

/** Import circles, one line each ("a -> b -> a"). */
export function circles(edges: readonly Edge[]): string[] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const found: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    path.push(n);
    for (const m of next.get(n) ?? []) {
      if (state.get(m) === 'open') found.push(`circle: ${[...path.slice(path.indexOf(m)), m].join(' -> ')}`);
      else if (!state.has(m)) visit(m);
    }
    path.pop();
    state.set(n, 'done');
  };
  for (const n of [...next.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

function sourceTree(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const d of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const p = `${dir}/${d.name}`;
      if (d.isDirectory()) walk(p);
      else if (d.name.endsWith('.ts')) files.set(p, readFileSync(join(ROOT, p), 'utf8'));
    }
  };
  walk('src');
  return files;
}

describe('layering', () => {
  const tree = sourceTree();

  it('reads the whole tree', () => {
    expect(tree.size).toBeGreaterThan(80);
    expect(relative(ROOT, join(ROOT, 'src'))).toBe('src');
  });

  it('every import follows the table; no circle', () => {
    expect(violations(tree, KNOWN)).toEqual([]);
  });

  it('every known exception still exists (remove an entry once its change lands)', () => {
    const all = new Set<string>();
    for (const [file, text] of tree) for (const s of specifiers(text)) if (s.startsWith('.')) all.add(`${file} -> ${resolve(file, s)}`);
    expect(Object.keys(KNOWN).filter((k) => !all.has(k))).toEqual([]);
  });

  it('finds a model import running up, a view reading the kernel, a circle, a misplaced package, I/O in a planner and a window made outside the pipeline', () => {
    const bad = new Map([
      ['src/model/a.ts', "import type { Sample } from '../source/types.js';\nimport { b } from './b.js';"],
      ['src/model/b.ts', "export { a } from './a.js';"],
      ['src/tui/panel.ts', "const k = await import('../source/kernelSource.js');"],
      ['src/format/x.ts', "import {\n  y,\n  type Z,\n} from '../commands/advise.js';\nimport blessed from 'blessed';"],
      ['src/advise/p.ts', "import { readFileSync } from 'node:fs';"],
      ['src/commands/a.ts', "import { run } from './b.js';\nimport { addProbeOptions } from './options.js';\nimport { buildSnapshot, type SnapshotV1 } from '../model/snapshot.js';"],
      // mentions in comments are not imports
      ['src/model/c.ts', "// import x from '../tui/screen.js'\n/* import y from '../cli.js' */"],
    ]);
    expect(violations(bad)).toEqual([
      "src/model/a.ts -> src/source/types.ts: model/ may not import source/",
      "src/tui/panel.ts -> src/source/kernelSource.ts: tui/ may not import source/",
      "src/format/x.ts -> src/commands/advise.ts: format/ may not import commands/",
      'src/format/x.ts: only src/tui/screen.ts may load blessed',
      'src/advise/p.ts: advise/ is pure but imports node:fs',
      'src/commands/a.ts -> src/commands/b.ts: a command imports another command',
      'circle: src/model/a.ts -> src/model/b.ts -> src/model/a.ts',
      'src/commands/a.ts: only src/source/windows.ts, src/model/ may import buildSnapshot',
    ]);
  });
});

/** Which parts of native/ may use what another part defines (its own always). */
const NATIVE_MAY_USE: Record<string, readonly string[]> = {
  'native/core': [],
  'native/selftest': ['native/core'],
  'native/addon.cc': ['native/core'],
};

function nativePart(file: string): string {
  return file.startsWith('native/core/') ? 'native/core' : file.startsWith('native/selftest/') ? 'native/selftest' : file;
}

/** C without its comments, strings and character literals. */
function cCode(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/.*$/gm, '').replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/g, '""');
}

/**
 * The names a C file defines for others (kernel style: a definition starts
 * at column 0; `static` ones stay in their file): functions, whose first line
 * does not end in `;`, and variables.
 */
export function cDefinitions(text: string): string[] {
  const names: string[] = [];
  for (const line of cCode(text).split('\n')) {
    if (!/^[A-Za-z_]/.test(line) || /^(static|extern|typedef|struct\s+\w+\s*\{|enum|union|#)/.test(line)) continue;
    const fn = /\b([A-Za-z_]\w*)\s*\([^;]*$/.exec(line);
    const v = /\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*(?:=.*|;)\s*$/.exec(line);
    if (fn && !/^(if|while|for|switch|return|sizeof)$/.test(fn[1]!)) names.push(fn[1]!);
    else if (v && !line.includes('(')) names.push(v[1]!);
  }
  return names;
}

/** Parts using what they may not, and circles among C files, in a tree of (path -> text). */
export function nativeViolations(files: ReadonlyMap<string, string>): string[] {
  const definer = new Map<string, string>();
  // the addon's own functions sit in an anonymous namespace: it defines nothing for others
  for (const [file, text] of files) if (file.endsWith('.c')) for (const n of cDefinitions(text)) definer.set(n, file);
  const out: string[] = [];
  const edges: Edge[] = [];
  for (const [file, text] of files) {
    if (!/\.(c|cc)$/.test(file)) continue;
    const code = cCode(text);
    const used = new Set<string>();
    for (const m of code.matchAll(/(?<![\w.>])([A-Za-z_]\w*)\b/g)) {
      const to = definer.get(m[1]!);
      if (to && to !== file && !used.has(to)) {
        used.add(to);
        edges.push({ from: file, to });
        const [a, b] = [nativePart(file), nativePart(to)];
        if (a !== b && !(NATIVE_MAY_USE[a] ?? []).includes(b)) out.push(`${file} -> ${to}: ${a} may not use ${b}`);
      }
    }
  }
  return [...out, ...circles(edges)];
}

function nativeTree(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const d of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const p = `${dir}/${d.name}`;
      if (d.isDirectory()) walk(p);
      else if (/\.(c|cc|h)$/.test(d.name)) files.set(p, readFileSync(join(ROOT, p), 'utf8'));
    }
  };
  walk('native');
  return files;
}

describe('layering of native/', () => {
  const tree = nativeTree();

  it('reads the core, the addon and the self-test', () => {
    const defs = new Set([...tree].flatMap(([f, t]) => (f.endsWith('.c') ? cDefinitions(t) : [])));
    for (const name of ['ctop_probe_open_best', 'ctop_err_set', 'ctop_netns_open', 'check', 'die', 'load_tier', 'failures', 'ctop_nf_hook_desc']) {
      expect(defs, name).toContain(name);
    }
  });

  it('the core uses nothing of the addon or the self-test; no circle', () => {
    expect(nativeViolations(tree)).toEqual([]);
  });

  it('finds a circle and a core file reaching into the self-test', () => {
    const bad = new Map([
      ['native/selftest/main.c', 'int failures;\n\nint main(void)\n{\n\treturn helper() + failures;\n}\n'],
      ['native/selftest/helper.c', '/* main() is elsewhere */\nint helper(void)\n{\n\tstatic int n;\n\treturn n + failures;\n}\n'],
      ['native/core/x.c', 'static int quiet(void) { return 0; }\nint ctop_x(const struct ctop_err *e)\n{\n\treturn e->failures + helper();\n}\n'],
    ]);
    expect(nativeViolations(bad)).toEqual([
      'native/core/x.c -> native/selftest/helper.c: native/core may not use native/selftest',
      'circle: native/selftest/helper.c -> native/selftest/main.c -> native/selftest/helper.c',
    ]);
  });
});
