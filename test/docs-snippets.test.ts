/**
 * Every TypeScript snippet in README.md and docs/*.md is extracted, typechecked as a module of its own
 * (the package name resolves to this repository's lib/), and a snippet that builds a CDK app is run:
 * its synth must be clean under cdk-nag. A pasted example never fails.
 *
 * A snippet whose first line is `// bin/NAME.ts` or `// lib/NAME.ts` is that file of an app made by
 * `cdk init app --language typescript` (CommonJS, extensionless relative imports, no `app.synth()`: the
 * CDK synthesizes when the app exits). Each `bin/` snippet is such an app, with the latest snippet of
 * every `lib/` file shown before it in the same document; each `lib/` snippet must be part of one.
 * Here those apps are typechecked; test/package.test.ts builds each into a real `cdk init` app from the
 * packed package and synthesizes it under cdk-nag.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeBlocks, type DocApp, docApps, PROJECT_FILE } from './support/doc-snippets.ts';

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

/** A `cdk init` app of a document, written next to it. */
interface ProjectApp extends DocApp {
  readonly source: string;
  readonly dir: string;
}

const snippets: Snippet[] = [];
const projectApps: ProjectApp[] = [];
/** `lib/` snippets that no app includes (shown after the last `bin/`, or replaced before one). */
const unusedLibs: string[] = [];

for (const doc of DOCS) {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const slug = doc.replace(/[/.]/g, '-');
  codeBlocks(text).forEach((code, index) => {
    if (PROJECT_FILE.test(code)) return;
    // Next to its document, so relative imports in it resolve as a reader expects.
    snippets.push({
      source: doc,
      index,
      file: join(ROOT, dirname(doc), `.snippet-${slug}-${index}.ts`),
      code,
    });
  });
  const found = docApps(doc, text);
  unusedLibs.push(...found.unusedLibs);
  for (const app of found.apps)
    projectApps.push({
      ...app,
      source: doc,
      dir: join(ROOT, dirname(doc), `.snippet-${slug}-app-${app.index}`),
    });
}

describe('documentation snippets', () => {
  beforeAll(() => {
    for (const s of snippets) writeFileSync(s.file, s.code);
    for (const app of projectApps) {
      // `cdk init` writes no "type" into package.json: its files are CommonJS.
      mkdirSync(app.dir, { recursive: true });
      writeFileSync(join(app.dir, 'package.json'), '{ "type": "commonjs" }\n');
      for (const [path, code] of app.files) {
        mkdirSync(join(app.dir, dirname(path)), { recursive: true });
        writeFileSync(join(app.dir, path), code);
      }
    }
    writeFileSync(
      join(ROOT, 'tsconfig.snippets.json'),
      JSON.stringify({
        extends: './tsconfig.json',
        // `cdk init`'s tsconfig has no verbatimModuleSyntax, which forbids `import` in a CommonJS file.
        compilerOptions: { verbatimModuleSyntax: false },
        include: [
          ...snippets.map((s) => relative(ROOT, s.file)),
          ...projectApps.map((app) => `${relative(ROOT, app.dir)}/**/*.ts`),
        ],
      }),
    );
  });
  afterAll(() => {
    for (const s of snippets) rmSync(s.file, { force: true });
    for (const app of projectApps) rmSync(app.dir, { recursive: true, force: true });
    rmSync(join(ROOT, 'tsconfig.snippets.json'), { force: true });
    for (const name of [...snippets.map((s) => basename(s.file)), ...projectApps.map((a) => basename(a.dir))])
      rmSync(join(ROOT, 'cdk.out', name), { recursive: true, force: true });
  });

  it('finds the snippets', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(2);
    // docs/library.md: the app of `cdk init`, with outputs, with cdk-nag, and the two accounts' apps.
    expect(projectApps.map((a) => `${a.source} ${a.bin}`)).toEqual([
      'docs/library.md bin/crm.ts',
      'docs/library.md bin/crm.ts',
      'docs/library.md bin/helpdesk.ts',
      'docs/library.md bin/crm.ts',
    ]);
  });

  it('shows every lib/ file of a cdk init app in an app (a bin/ snippet after it)', () => {
    expect(unusedLibs).toEqual([]);
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

  /** Runs an app file as `cdk synth` does (CDK_OUTDIR set), every synth checked by cdk-nag. */
  function synthesize(file: string, outdir: string): string {
    return execFileSync(
      process.execPath,
      ['--import', 'tsx', '--import', join(ROOT, 'test/support/snippet-preload.ts'), file],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          CDK_CONTEXT_JSON: JSON.stringify({ 'aws:cdk:bundling-stacks': [] }),
          CDK_OUTDIR: join(ROOT, 'cdk.out', outdir),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  }

  const apps = snippets.filter((s) => s.code.includes('new App('));
  it.each(apps.map((s) => [`${s.source} #${s.index + 1}`, s] as const))(
    'synthesizes %s cleanly under cdk-nag',
    (_name, snippet) => {
      expect(synthesize(snippet.file, basename(snippet.file))).toContain('SNIPPET_SYNTH_OK');
    },
    60_000,
  );
  // The project apps are synthesized in real `cdk init` apps from the packed package: test/package.test.ts.
});
