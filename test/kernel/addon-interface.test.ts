/**
 * The addon's surface is the one src/native/addon.ts declares: every method
 * of Probe, Netns and Walker and every export, read from the built addon and
 * from the declaration's text, so neither can grow a member the other lacks
 * (an export nothing declares is dead; a declared one the addon lacks fails
 * at run time). Loading the addon needs no privileges; nothing is loaded
 * into the kernel.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native/addon.js';
import { ROOT } from '../support/cli.js';

const DECLARED = readFileSync(join(ROOT, 'src', 'native', 'addon.ts'), 'utf8');

/** The members an interface of addon.ts declares (methods and properties, one per line). */
function declared(iface: string): string[] {
  const body = new RegExp(`export interface ${iface} \\{([\\s\\S]*?)\\n\\}`).exec(DECLARED)?.[1];
  if (body === undefined) throw new Error(`addon.ts declares no interface ${iface}`);
  const code = body.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  return [...code.matchAll(/^ {2}(\w+)\s*[(:]/gm)].map((m) => m[1]!).sort();
}

function methods(cls: unknown): string[] {
  const proto = (cls as { prototype: object }).prototype;
  return Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor').sort();
}

describe('the addon and its declaration', () => {
  const addon = loadAddon();

  it('reads the declaration', () => {
    expect(declared('NativeProbe')).toContain('programs');
    expect(declared('Addon')).toContain('Probe');
  });

  it('exports exactly what Addon declares', () => {
    expect(Object.keys(addon).sort()).toEqual(declared('Addon'));
  });

  for (const [cls, iface] of [['Probe', 'NativeProbe'], ['Netns', 'NativeNetns'], ['Walker', 'NativeWalker'], ['WalkerStart', 'NativeWalkerStart']] as const) {
    it(`${cls} has exactly the methods ${iface} declares`, () => {
      expect(methods(addon[cls])).toEqual(declared(iface));
    });
  }
});
