/**
 * The published package, as a consumer gets it: `npm pack`, then a fresh app (ESM, and CommonJS as
 * `cdk init` makes it) with only aws-cdk-lib, constructs and the tarball installed, typechecked against
 * the shipped .d.ts and synthesized. No esbuild, no Docker: the Lambda code ships in the package.
 *
 * "Installed" means unpacked into the app's node_modules with exactly the dependencies the packed
 * package.json declares (linked from this repository's node_modules), so nothing reaches the network
 * and an undeclared dependency fails here as it would for a user.
 *
 * And docs/library.md's apps in real `cdk init` apps made from the same tarball (test/support/cdk-init-app.ts).
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_ENTRIES } from '../lib/bundling.ts';
import { cdkInit, cdkSynth, installLinked, pack, writeFiles } from './support/cdk-init-app.ts';
import { docApps, initFilesOf } from './support/doc-snippets.ts';
import { type AccountTemplate, crossAccountProblems } from './support/eventbridge-rules.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_MODULES = join(ROOT, 'node_modules');
const TSX = join(NODE_MODULES, 'tsx/dist/cli.mjs');
const TSC = join(NODE_MODULES, 'typescript/bin/tsc');
const BUNDLES = Object.keys(FUNCTION_ENTRIES);

let packed: string;
/** Every temporary directory made here, removed at the end. */
const made: string[] = [];
let files: string[];
let manifest: {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};

function run(file: string, args: string[], cwd: string): string {
  return execFileSync(process.execPath, [file, ...args], {
    cwd,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '',
      HOME: tmpdir(),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A fresh app directory with the package and exactly its declared dependencies installed. */
function consumerApp(type: 'module' | 'commonjs'): string {
  const app = mkdtempSync(join(tmpdir(), `zapi-consumer-${type}-`));
  made.push(app);
  const modules = join(app, 'node_modules');
  mkdirSync(join(modules, '@valibot'), { recursive: true });
  const target = join(modules, 'zapi-presence-eventbridge');
  mkdirSync(target);
  execFileSync('tar', ['xzf', packed, '-C', target, '--strip-components=1']);
  for (const name of [
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ]) {
    symlinkSync(join(NODE_MODULES, name), join(modules, name), 'dir');
  }
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: `consumer-${type}`, private: true, ...(type === 'module' && { type: 'module' }) }),
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      include: ['app.ts'],
    }),
  );
  return app;
}

const APP = `import { App, Stack } from 'aws-cdk-lib';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { PRESENCE_STATUSES, type PresenceEvent, ZapiPresence } from 'zapi-presence-eventbridge';
import { presenceEvent } from 'zapi-presence-eventbridge/testing';

const app = new App({ outdir: 'cdk.out' });
const stack = new Stack(app, 'Consumer', { env: { account: '123456789012', region: 'sa-east-1' } });
const presence = new ZapiPresence(stack, 'Presence', { instanceIds: ['ID1'] });
const queue = new Queue(stack, 'Typing', { enforceSSL: true });
presence.onStatus('Typing', ['COMPOSING'], { targets: [new SqsQueue(queue)] });
const event: PresenceEvent<'COMPOSING'> = presenceEvent('COMPOSING');
console.log(JSON.stringify({ statuses: PRESENCE_STATUSES.length, detailType: event['detail-type'] }));
app.synth();
`;

describe('the npm package', () => {
  beforeAll(() => {
    const destination = mkdtempSync(join(tmpdir(), 'zapi-pack-'));
    made.push(destination);
    const result = pack(destination);
    packed = result.tarball;
    files = result.files;
    manifest = result.manifest;
  }, 180_000);
  afterAll(() => {
    for (const directory of made) rmSync(directory, { recursive: true, force: true });
  });

  it('holds exactly what a consumer needs: the compiled library, its types, the Lambda bundles', () => {
    expect(files).toContain('dist/lib/index.js');
    expect(files).toContain('dist/lib/index.d.ts');
    expect(files).toContain('dist/lib/testing.js');
    // Every function the construct can create, presence state and reader included.
    expect(BUNDLES).toEqual(
      expect.arrayContaining(['receiver', 'reconciler', 'registrar', 'canary', 'canaryArrival']),
    );
    expect(BUNDLES.length).toBeGreaterThanOrEqual(7);
    for (const name of BUNDLES) expect(files).toContain(`dist/bundles/${name}/index.mjs`);
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']));
    // The README's links to files of this repository work in node_modules too.
    const linked = [
      ...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/\]\((?!https?:|#)([^)#]+)/g),
    ].map((m) => m[1]);
    expect(linked.length).toBeGreaterThan(5);
    for (const doc of linked) expect(files).toContain(doc);
    const unexpected = files.filter(
      (f) =>
        !/^(dist\/(lib|functions)\/.*\.(js|d\.ts)|dist\/cjs\/(index|testing)\.cjs|dist\/bundles\/[a-zA-Z]+\/index\.mjs|docs\/[a-z-]+\.(md|schema\.json|openapi\.json)|LICENSE|README\.md|BENCHMARKS\.md|package\.json)$/.test(
          f,
        ),
    );
    expect(unexpected).toEqual([]);
    expect(files.some((f) => f.startsWith('test/') || f.includes('cdk.out') || f.endsWith('.test.js'))).toBe(
      false,
    );
  });

  it('declares only what the library loads: aws-cdk-lib and constructs as peers, the contract as dependencies', () => {
    expect(Object.keys(manifest.peerDependencies ?? {}).sort()).toEqual(['aws-cdk-lib', 'constructs']);
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual(['@valibot/to-json-schema', 'valibot']);
  });

  it.each(['module', 'commonjs'] as const)(
    'typechecks and synthesizes in a fresh %s app, with the Lambda code from the package',
    (type) => {
      const app = consumerApp(type);
      writeFileSync(join(app, 'app.ts'), APP);
      run(TSC, ['-p', 'tsconfig.json'], app);
      const printed = run(TSX, ['app.ts'], app);
      expect(JSON.parse(printed.trim().split('\n').at(-1) ?? '{}')).toEqual({
        statuses: 5,
        detailType: 'Z-API Chat Presence COMPOSING',
      });
      const template = JSON.parse(readFileSync(join(app, 'cdk.out', 'Consumer.template.json'), 'utf8')) as {
        Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
      };
      const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
      // Receiver, reconciler, registrar, canary, arrival timer.
      expect(functions.filter((f) => f.Properties.Handler === 'index.handler')).toHaveLength(5);
      // Each bundle arrived as an asset, byte for byte the one in the package.
      const assets = readdirSync(join(app, 'cdk.out')).filter((d) => d.startsWith('asset.'));
      const shipped = ['receiver', 'reconciler', 'registrar', 'canary', 'canaryArrival'].map((n) =>
        readFileSync(
          join(app, 'node_modules/zapi-presence-eventbridge/dist/bundles', n, 'index.mjs'),
          'utf8',
        ),
      );
      const copied = assets.flatMap((d) => {
        try {
          return [readFileSync(join(app, 'cdk.out', d, 'index.mjs'), 'utf8')];
        } catch {
          return [];
        }
      });
      for (const bundle of shipped) expect(copied).toContain(bundle);
    },
    120_000,
  );

  it('synthesizes the live feed from the package: the packed onSubscribe bundle, with its claim written in', () => {
    const app = consumerApp('module');
    writeFileSync(
      join(app, 'app.ts'),
      `import { App, Stack } from 'aws-cdk-lib';
import { ZapiPresence } from 'zapi-presence-eventbridge';
const app = new App({ outdir: 'cdk.out' });
const stack = new Stack(app, 'Feed', { env: { account: '123456789012', region: 'sa-east-1' } });
new ZapiPresence(stack, 'Presence', { presenceStore: true, liveFeed: true });
app.synth();
`,
    );
    run(TSC, ['-p', 'tsconfig.json'], app);
    run(TSX, ['app.ts'], app);
    const template = JSON.parse(readFileSync(join(app, 'cdk.out', 'Feed.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const namespace = Object.values(template.Resources).find(
      (r) => r.Type === 'AWS::AppSync::ChannelNamespace',
    );
    const packed = readFileSync(
      join(app, 'node_modules/zapi-presence-eventbridge/dist/bundles/feedSubscribe/index.mjs'),
      'utf8',
    );
    expect(namespace?.Properties.CodeHandlers).toBe(
      packed.replace('"__ZAPI_PRESENCE_GROUPS_CLAIM__"', '"cognito:groups"'),
    );
  }, 120_000);

  it('exports the browser client as zapi-presence-eventbridge/client: ESM, typed, without valibot or the CDK', () => {
    const app = consumerApp('module');
    writeFileSync(
      join(app, 'app.ts'),
      `import { connectPresenceFeed, type ChatPresence, type PresenceFeedOptions } from 'zapi-presence-eventbridge/client';
const options: Pick<PresenceFeedOptions, 'instanceIds'> = { instanceIds: ['ID1'] };
const show = (chat: ChatPresence) => chat.activity;
console.log(typeof connectPresenceFeed, options.instanceIds.length, typeof show);
`,
    );
    run(TSC, ['-p', 'tsconfig.json'], app);
    expect(run(TSX, ['app.ts'], app).trim()).toBe('function 1 function');
    const client = join(app, 'node_modules/zapi-presence-eventbridge/dist/functions/live-feed/client.js');
    const imports = [...readFileSync(client, 'utf8').matchAll(/from ['"]([^'"]+)['"]/g)].map((m) => m[1]);
    expect(imports).toEqual(['../shared/contract/live-feed-contract.js']);
    expect(
      readFileSync(
        join(
          app,
          'node_modules/zapi-presence-eventbridge/dist/functions/shared/contract/live-feed-contract.js',
        ),
        'utf8',
      ),
    ).not.toMatch(/from ['"]/);
  }, 120_000);

  it('loads with require() in plain CommonJS', () => {
    const app = consumerApp('commonjs');
    writeFileSync(
      join(app, 'check.cjs'),
      "const p = require('zapi-presence-eventbridge'); const t = require('zapi-presence-eventbridge/testing');\n" +
        "console.log(typeof p.ZapiPresence, p.EVENT_SOURCE, t.presenceEvent('PAUSED').detail.status);\n",
    );
    expect(run(join(app, 'check.cjs'), [], app).trim()).toBe('function zapi.chat-presence PAUSED');
  });

  /**
   * docs/library.md's apps, each in a real `cdk init app --language typescript` in a folder named after
   * it, the snippets written over the two files cdk init made, synthesized by the CDK CLI through the
   * app's own cdk.json (`npx tsc && npx tsx bin/NAME.ts`) with cdk-nag on: what a user pastes, built
   * from the packed package (test/consumer/run.ts does the same with aws-cdk-lib from the registry).
   */
  describe('in a cdk init app, as docs/library.md shows it', () => {
    const { apps } = docApps('docs/library.md', readFileSync(join(ROOT, 'docs/library.md'), 'utf8'));
    /** The folder each app was synthesized in. */
    const built = new Map<number, string>();

    it('finds the apps: the construct, its outputs with cdk-nag, and the two accounts of a cross-account subscription', () => {
      expect(apps.map((a) => a.bin)).toEqual(['bin/crm.ts', 'bin/crm.ts', 'bin/helpdesk.ts', 'bin/crm.ts']);
    });

    it.each(apps.map((a) => [`#${a.index + 1} (${a.bin})`, a] as const))(
      'synthesizes %s clean under cdk-nag',
      (_name, docApp) => {
        const parent = mkdtempSync(join(tmpdir(), 'zapi-cdk-init-'));
        made.push(parent);
        const dir = cdkInit(parent, docApp.folder);
        installLinked(dir, { tarball: packed, manifest });
        const files = initFilesOf(docApp);
        // Exactly the two files cdk init made, no other.
        expect([...files.keys()].sort()).toEqual([docApp.bin, `lib/${docApp.folder}-stack.ts`].sort());
        for (const path of files.keys()) expect(existsSync(join(dir, path)), path).toBe(true);
        writeFiles(dir, files);
        const synth = cdkSynth(dir);
        expect(synth.status, synth.output).toBe(0);
        expect(new Set(synth.nag.plugins)).toEqual(new Set(['AwsSolutions', 'Serverless']));
        expect(synth.nag.violations).toEqual([]);
        built.set(docApp.index, dir);
      },
      120_000,
    );

    it('shows a cross-account subscription EventBridge accepts: its two accounts, as synthesized', () => {
      const helpdesk = apps.findIndex((a) => a.bin === 'bin/helpdesk.ts');
      const crm = apps.find((a, i) => i > helpdesk && a.bin === 'bin/crm.ts');
      if (helpdesk < 0 || crm === undefined)
        throw new Error('docs/library.md: no helpdesk app followed by a crm app');
      const accounts = [apps[helpdesk], crm].flatMap((app) => {
        const dir = built.get((app as { index: number }).index);
        if (dir === undefined) throw new Error(`${app?.bin} was not synthesized`);
        return stacksOf(join(dir, 'cdk.out'));
      });
      expect(accounts.map((a) => a.account).sort()).toEqual(['123456789012', '210987654321']);
      expect(crossAccountProblems(accounts)).toEqual([]);
    });
  });
});

/** The stacks of a cloud assembly, with the account and region each deploys to. */
function stacksOf(assembly: string): AccountTemplate[] {
  const manifestJson = JSON.parse(readFileSync(join(assembly, 'manifest.json'), 'utf8')) as {
    artifacts: Record<string, { type: string; environment?: string; properties?: { templateFile?: string } }>;
  };
  return Object.entries(manifestJson.artifacts)
    .filter(([, a]) => a.type === 'aws:cloudformation:stack')
    .map(([name, a]) => {
      const [, account = '', region = ''] =
        /^aws:\/\/(\d{12})\/([a-z0-9-]+)$/.exec(a.environment ?? '') ?? [];
      return {
        name,
        account,
        region,
        template: JSON.parse(readFileSync(join(assembly, a.properties?.templateFile ?? ''), 'utf8')),
      };
    });
}
