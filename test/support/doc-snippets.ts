/**
 * The TypeScript snippets of a document, and the `cdk init` apps they make (test/docs-snippets.test.ts
 * runs them from source; test/package.test.ts and test/consumer/run.ts build them into real `cdk init`
 * apps from the packed package).
 *
 * A snippet whose first line is `// bin/NAME.ts` or `// lib/NAME.ts` is that file of an app made by
 * `cdk init app --language typescript` in a folder named NAME (CommonJS, extensionless relative imports,
 * no `app.synth()`: the CDK synthesizes when the app exits). Each `bin/` snippet is such an app, with the
 * latest snippet of every `lib/` file shown before it in the same document.
 */

/** The first line of a snippet that is a file of a `cdk init` app. */
export const PROJECT_FILE = /^\/\/ ((?:bin|lib)\/[\w.-]+\.ts)\b/;

/** The ```ts blocks of a Markdown text, in order. */
export function codeBlocks(text: string): string[] {
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

/** A `cdk init` app of a document: the files shown so far, run from its `bin/` snippet. */
export interface DocApp {
  /** The block index of its `bin/` snippet. */
  readonly index: number;
  /** `bin/NAME.ts`. */
  readonly bin: string;
  /** The folder `cdk init` ran in: NAME. */
  readonly folder: string;
  /** Every project file shown so far, by path (the latest of each). */
  readonly files: ReadonlyMap<string, string>;
}

export function docApps(doc: string, text: string): { apps: DocApp[]; unusedLibs: string[] } {
  const apps: DocApp[] = [];
  /** `lib/` snippets that no app includes (shown after the last `bin/`, or replaced before one). */
  const unusedLibs: string[] = [];
  const files = new Map<string, string>();
  const pending = new Map<string, number>();
  codeBlocks(text).forEach((code, index) => {
    const path = PROJECT_FILE.exec(code)?.[1];
    if (path === undefined) return;
    files.set(path, code);
    if (path.startsWith('lib/')) {
      const earlier = pending.get(path);
      if (earlier !== undefined)
        unusedLibs.push(`${doc} #${earlier + 1} (${path}): replaced by #${index + 1} before a bin/ snippet`);
      pending.set(path, index);
      return;
    }
    apps.push({ index, bin: path, folder: path.slice('bin/'.length, -'.ts'.length), files: new Map(files) });
    pending.clear();
  });
  for (const [path, index] of pending)
    unusedLibs.push(`${doc} #${index + 1} (${path}): no bin/ snippet after it`);
  return { apps, unusedLibs };
}

/** The two files `cdk init` makes in the app's folder that its snippets fill: bin/NAME.ts, lib/NAME-stack.ts. */
export function initFilesOf(app: DocApp): Map<string, string> {
  const wanted = [app.bin, `lib/${app.folder}-stack.ts`];
  const found = new Map([...app.files].filter(([path]) => wanted.includes(path)));
  const extra = [...app.files.keys()].filter(
    (path) =>
      !wanted.includes(path) && (path.startsWith(`lib/${app.folder}`) || path === `bin/${app.folder}.ts`),
  );
  if (extra.length > 0)
    throw new Error(`snippets of ${app.bin} name files cdk init does not make: ${extra.join(', ')}`);
  return found;
}
