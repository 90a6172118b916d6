/**
 * Every TypeScript snippet in README.md and docs/*.md is extracted, typechecked as a module of its own
 * (the package name resolves to this repository's lib/), and a snippet that builds a CDK app is run:
 * its synth must be clean under cdk-nag. A pasted example never fails.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

interface Snippet {
  readonly source: string;
  readonly index: number;
  readonly file: string;
  readonly code: string;
}

const snippets: Snippet[] = DOCS.flatMap((doc) => {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  return blocks.map((code, index) => ({
    source: doc,
    index,
    // Next to its document, so relative imports in it resolve as a reader expects.
    file: join(ROOT, dirname(doc), `.snippet-${doc.replace(/[/.]/g, '-')}-${index}.ts`),
    code,
  }));
});

describe('documentation snippets', () => {
  beforeAll(() => {
    for (const s of snippets) writeFileSync(s.file, s.code);
    writeFileSync(
      join(ROOT, 'tsconfig.snippets.json'),
      JSON.stringify({ extends: './tsconfig.json', include: snippets.map((s) => relative(ROOT, s.file)) }),
    );
  });
  afterAll(() => {
    for (const s of snippets) rmSync(s.file, { force: true });
    rmSync(join(ROOT, 'tsconfig.snippets.json'), { force: true });
    for (const s of snippets)
      rmSync(join(ROOT, 'cdk.out', `.snippet-${s.index}`), { recursive: true, force: true });
  });

  it('finds the snippets', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(4);
  });

  it('typechecks every snippet', () => {
    let output = '';
    try {
      execFileSync(
        process.execPath,
        [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.snippets.json'],
        {
          cwd: ROOT,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
    } catch (error) {
      output = String((error as { stdout?: string }).stdout ?? error);
    }
    expect(output).toBe('');
  }, 120_000);

  const apps = snippets.filter((s) => s.code.includes('new App('));
  it.each(apps.map((s) => [`${s.source} #${s.index + 1}`, s] as const))(
    'synthesizes %s cleanly under cdk-nag',
    (_name, snippet) => {
      const output = execFileSync(
        process.execPath,
        ['--import', 'tsx', '--import', join(ROOT, 'test/support/snippet-preload.ts'), snippet.file],
        {
          cwd: ROOT,
          encoding: 'utf8',
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '/tmp',
            CDK_CONTEXT_JSON: JSON.stringify({ 'aws:cdk:bundling-stacks': [] }),
            CDK_OUTDIR: join(ROOT, 'cdk.out', `.snippet-${snippet.index}`),
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      expect(output).toContain('SNIPPET_SYNTH_OK');
    },
    60_000,
  );
});
