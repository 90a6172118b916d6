/**
 * The layout's rules, read from the import statements of the source:
 * - one folder per capability under functions/: it imports its own folder and functions/shared/ only
 *   (functions/local/, which runs every core on one machine, may import any);
 * - functions/shared/ imports no capability, calls no Z-API and touches no DynamoDB;
 * - lib/ reads a function only through its leaf settings module (or shared/), and a settings module
 *   imports nothing but shared leaves, so synthesizing loads no function runtime.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FUNCTION_ENTRIES } from '../lib/bundling.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sources(folder: string): string[] {
  return readdirSync(join(ROOT, folder)).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Every module a file imports (static, dynamic and type-only), relative ones as repo paths. */
function importsOf(file: string): { relative: string[]; packages: string[] } {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specifiers = [
    ...text.matchAll(/(?:^|\s)(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((match) => match[1] as string);
  return {
    relative: specifiers
      .filter((s) => s.startsWith('.'))
      .map((s) =>
        relative(ROOT, resolve(ROOT, dirname(file), s))
          .split('\\')
          .join('/'),
      ),
    packages: specifiers.filter((s) => !s.startsWith('.')),
  };
}

const FUNCTIONS = sources('functions');
const capabilityOf = (path: string) => /^functions\/([^/]+)\//.exec(path)?.[1];
const CAPABILITIES = [...new Set(FUNCTIONS.map(capabilityOf))].filter(
  (c): c is string => c !== undefined && c !== 'shared' && c !== 'local',
);

describe('one room per capability', () => {
  it('finds the capabilities (the parser reads this tree)', () => {
    expect(CAPABILITIES.sort()).toEqual([
      'canary',
      'fleet',
      'live-feed',
      'presence-store',
      'presence-webhook',
    ]);
    expect(importsOf('functions/fleet/sweep-handler.ts').relative).toContain('functions/fleet/reconcile.ts');
  });

  it.each(CAPABILITIES)('functions/%s imports only its own folder and functions/shared/', (capability) => {
    for (const file of FUNCTIONS.filter((f) => capabilityOf(f) === capability)) {
      for (const target of importsOf(file).relative) {
        expect(
          target.startsWith(`functions/${capability}/`) || target.startsWith('functions/shared/'),
          `${file} imports ${target}`,
        ).toBe(true);
      }
    }
  });

  it('functions/shared/ imports no capability, calls no Z-API and uses no DynamoDB', () => {
    for (const file of FUNCTIONS.filter((f) => f.startsWith('functions/shared/'))) {
      const { relative: targets, packages } = importsOf(file);
      for (const target of targets) expect(target, file).toMatch(/^functions\/shared\//);
      expect(
        packages.filter((p) => p.includes('dynamodb')),
        file,
      ).toEqual([]);
      expect(readFileSync(join(ROOT, file), 'utf8'), file).not.toMatch(/z-api\.io|update-webhook/);
    }
  });

  it("each Lambda's entry point sits in its capability's folder", () => {
    const capabilityOfEntry = Object.values(FUNCTION_ENTRIES).map((entry) => entry.split('/')[0]);
    for (const capability of capabilityOfEntry) expect(CAPABILITIES).toContain(capability);
    expect(Object.values(FUNCTION_ENTRIES).filter((e) => e.startsWith('fleet/'))).toHaveLength(2);
    expect(Object.values(FUNCTION_ENTRIES).filter((e) => e.startsWith('presence-store/'))).toHaveLength(2);
  });

  it('lib/ reads a function only through its leaf settings module, or functions/shared/', () => {
    const read = new Set<string>();
    for (const file of sources('lib')) {
      for (const target of importsOf(file).relative.filter((t) => t.startsWith('functions/'))) {
        expect(target, `${file} imports ${target}`).toMatch(/^functions\/(?:[^/]+\/settings\.ts|shared\/)/);
        read.add(target);
      }
    }
    for (const settings of [...read].filter((t) => t.endsWith('/settings.ts'))) {
      const { relative: targets, packages } = importsOf(settings);
      expect(packages, settings).toEqual([]);
      for (const target of targets) {
        expect(target, `${settings} imports ${target}`).toMatch(/^functions\/shared\/.+\.ts$/);
        expect(importsOf(target), `${target} is a leaf`).toEqual({ relative: [], packages: [] });
      }
    }
  });
});
