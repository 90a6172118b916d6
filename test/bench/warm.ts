/**
 * The warm path: the shipped receiver serving an accepted webhook vs one bare PutEvents call, bundled by
 * esbuild with its default settings (`bundle: true, platform: 'node'`: CommonJS, not minified,
 * `mainFields: main, module`), the same SDK version, the receiver's SDK settings, the same stand-in.
 * Measured two ways, both reported:
 *
 *   interleaved   both bundles in one process, call by call, each call timed on its own; ratio of the
 *                 medians; several processes, median and range of their ratios
 *   separate      each side alone in its own process, the same number of calls; the processes alternate
 *                 (receiver, bare, the bare built with the project's esbuild options) for several rounds;
 *                 the ratio of each round, median and range
 *
 * and where the time goes: a CPU profile of one interleaved process (receiver and bare rebuilt with
 * source maps, the code otherwise byte for byte the shipped one), self time per call by package, for
 * each side.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { DETAIL_TYPES, EVENT_SOURCE } from '../../functions/shared/contract/presence-contract.ts';
import { esbuildOptions } from '../../lib/bundling.ts';
import { runNodeScript } from '../support/invoke.ts';
import { CHILD_PRELUDE, PEAK_RSS_KB } from './child.ts';

const BARE_ENTRY = fileURLToPath(new URL('./bare-put-events.ts', import.meta.url));
const DEADLINE_ENTRY = fileURLToPath(new URL('./deadline-variants.ts', import.meta.url));

export interface WarmOptions {
  /** The receiver's index.mjs, as synth ships it. */
  readonly receiverBundle: string;
  /** The receiver's environment (stand-in endpoints, bus, secret parameter). */
  readonly env: Record<string, string>;
  /** An accepted webhook (API Gateway v2 event). */
  readonly event: { body: string; requestContext?: Record<string, unknown> } & Record<string, unknown>;
  readonly bus: string;
  readonly smoke: boolean;
  /** Working directory of the children (module resolution). */
  readonly root: string;
  /** Where the baselines, profiles and their bundles are written. */
  readonly outDir: string;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly values: number[];
}

export interface WarmResult {
  /** The first interleaved process (kept for the fields earlier reports had). */
  readonly handlerUs: number;
  readonly bareUs: number;
  readonly ratio: number;
  readonly calls: number;
  readonly cpuUs: number;
  readonly logBytesPerWebhook: number;
  readonly rssKb: number;
  readonly interleaved: {
    readonly processes: number;
    readonly callsPerProcess: number;
    readonly ratio: Spread;
    readonly handlerUs: Spread;
    readonly bareUs: Spread;
  };
  readonly separate: {
    readonly rounds: number;
    readonly callsPerProcess: number;
    /** receiver / bare (default esbuild settings), per round. */
    readonly ratio: Spread;
    /** bare built with the project's esbuild options / bare with the defaults, per round. */
    readonly projectOptionsRatio: Spread;
    readonly handlerUs: Spread;
    readonly bareUs: Spread;
    readonly bareProjectUs: Spread;
    readonly handlerCpuUs: Spread;
    readonly bareCpuUs: Spread;
  };
  /** CPU self time per call, by side and package (µs), from one profiled interleaved process. */
  readonly breakdown: {
    readonly calls: number;
    readonly receiver: Record<string, number>;
    readonly bare: Record<string, number>;
    readonly shared: Record<string, number>;
  };
  /** One PutEvents call without a deadline, with an AbortSignal, with deadline.run (µs, medians). */
  readonly deadlineCost: { readonly plainUs: Spread; readonly signalUs: Spread; readonly deadlineUs: Spread };
  readonly bareBundleBytes: number;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number, values };
}

/** The bare baseline, bundled by esbuild with its defaults (plus `platform: 'node'`, to run in Node). */
export async function buildBareDefault(outfile: string, sourcemap = false): Promise<string> {
  await esbuild.build({
    entryPoints: [BARE_ENTRY],
    bundle: true,
    platform: 'node',
    outfile,
    logLevel: 'warning',
    ...(sourcemap && { sourcemap: true }),
  });
  return outfile;
}

/** The bare baseline bundled with the project's options (lib/bundling.ts): ESM, minified, the aliases. */
export async function buildBareProject(outfile: string): Promise<string> {
  await esbuild.build({ ...esbuildOptions('receiver', outfile), entryPoints: [BARE_ENTRY] });
  return outfile;
}

/** The receiver rebuilt with a source map: the shipped code byte for byte, plus the map comment. */
async function buildReceiverWithMap(shipped: string, outfile: string): Promise<string> {
  await esbuild.build({ ...esbuildOptions('receiver', outfile), sourcemap: true });
  const withMap = readFileSync(outfile, 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\n?$/, '\n');
  if (withMap !== readFileSync(shipped, 'utf8'))
    throw new Error('the receiver rebuilt with a source map is not the shipped code');
  return outfile;
}

/** Loads what a child needs: the receiver's handler and/or the bare call, log lines to /dev/null. */
const childSetup = (o: {
  receiver?: string;
  bare?: string;
  event: unknown;
  entry: unknown;
}) => `${CHILD_PRELUDE}
  ${o.receiver ? `const { handler } = await import(${JSON.stringify(pathToFileURL(o.receiver).href)});` : ''}
  ${o.bare ? `const { putEvents } = await import(${JSON.stringify(pathToFileURL(o.bare).href)});` : ''}
  const event = ${JSON.stringify(o.event)};
  const entry = ${JSON.stringify(o.entry)};
  // As in Lambda: a context with a deadline, and every log line really written (to /dev/null).
  const fs = require('node:fs');
  const devNull = fs.openSync('/dev/null', 'w');
  const write = process.stdout.write.bind(process.stdout);
  let logBytes = 0;
  process.stdout.write = (chunk) => { logBytes += Buffer.byteLength(chunk); fs.writeSync(devNull, chunk); return true; };
  const callHandler = async () => {
    const deadline = Date.now() + 10000;
    const r = await handler(event, { getRemainingTimeInMillis: () => deadline - Date.now() });
    if (r.statusCode !== 200) throw new Error('status ' + r.statusCode);
  };
  const callBare = () => putEvents(entry);
  const med = (v) => { const s = [...v].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const report = (result) => { process.stdout.write = write; console.log('RESULT ' + JSON.stringify(result)); };
`;

/** Both sides in one process, interleaved call by call (the order alternating), each call timed. */
const interleavedScript = (
  o: { receiver: string; bare: string; event: unknown; entry: unknown },
  n: number,
  warmup: number,
  cpuCalls: number,
  profile?: string,
) => `${childSetup(o)}
  for (let i = 0; i < ${warmup}; i++) { await callHandler(); await callBare(); }
  ${
    profile
      ? `const { Session } = await import('node:inspector/promises');
  const session = new Session(); session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');`
      : ''
  }
  const handlerUs = [], bareUs = [];
  for (let i = 0; i < ${n}; i++) {
    const first = i % 2 === 0 ? callHandler : callBare;
    const second = first === callHandler ? callBare : callHandler;
    let t0 = performance.now(); await first(); const a = (performance.now() - t0) * 1000;
    t0 = performance.now(); await second(); const b = (performance.now() - t0) * 1000;
    if (first === callHandler) { handlerUs.push(a); bareUs.push(b); } else { handlerUs.push(b); bareUs.push(a); }
  }
  ${
    profile
      ? `const { profile } = await session.post('Profiler.stop');
  fs.writeFileSync(${JSON.stringify(profile)}, JSON.stringify(profile));`
      : ''
  }
  // CPU and log bytes per webhook from a handler-only run.
  logBytes = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < ${cpuCalls}; i++) await callHandler();
  const cpu = process.cpuUsage(cpu0);
  report({ handlerUs: med(handlerUs), bareUs: med(bareUs), cpuUs: (cpu.user + cpu.system) / ${Math.max(cpuCalls, 1)}, logBytesPerWebhook: logBytes / ${Math.max(cpuCalls, 1)}, calls: ${n}, rssKb: ${PEAK_RSS_KB} });
`;

/** One side alone in its process: `n` calls after `warmup`, each timed; median and CPU per call. */
const aloneScript = (
  o: { receiver?: string; bare?: string; event: unknown; entry: unknown },
  n: number,
  warmup: number,
) => `${childSetup(o)}
  const call = ${o.receiver ? 'callHandler' : 'callBare'};
  for (let i = 0; i < ${warmup}; i++) await call();
  const us = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < ${n}; i++) { const t0 = performance.now(); await call(); us.push((performance.now() - t0) * 1000); }
  const cpu = process.cpuUsage(cpu0);
  report({ us: med(us), cpuUs: (cpu.user + cpu.system) / ${n} });
`;

/** The deadline variants interleaved call by call in one process, one client (deadline-variants.ts). */
const deadlineScript = (bundle: string, entry: unknown, n: number, warmup: number) => `${CHILD_PRELUDE}
  const { variants } = await import(${JSON.stringify(pathToFileURL(bundle).href)});
  const entry = ${JSON.stringify(entry)};
  const names = ['plain', 'signal', 'deadline'];
  const us = { plain: [], signal: [], deadline: [] };
  for (let i = 0; i < ${warmup}; i++) for (const name of names) await variants[name](entry);
  for (let i = 0; i < ${n}; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length];
      const t0 = performance.now(); await variants[name](entry); us[name].push((performance.now() - t0) * 1000);
    }
  }
  const med = (v) => { const s = [...v].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  console.log('RESULT ' + JSON.stringify({ plainUs: med(us.plain), signalUs: med(us.signal), deadlineUs: med(us.deadline) }));
`;

async function runChild(script: string, env: Record<string, string>, cwd: string) {
  const { stdout, stderr } = await runNodeScript(script, env, cwd);
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`child printed no result: ${stderr || stdout}`);
  return JSON.parse(line.slice('RESULT '.length)) as Record<string, number>;
}

/** The entry the receiver publishes for `event` (its canonical detail, stamped), for the bare call. */
function bareEntry(event: WarmOptions['event'], bus: string, receivedAt: number) {
  return {
    EventBusName: bus,
    Source: EVENT_SOURCE,
    DetailType: DETAIL_TYPES.COMPOSING,
    Detail: JSON.stringify({ ...(JSON.parse(event.body) as object), receivedAt }),
  };
}

export async function measureWarm(o: WarmOptions): Promise<WarmResult> {
  const log = o.log ?? (() => {});
  mkdirSync(o.outDir, { recursive: true });
  const timeEpoch = Date.now();
  // As API Gateway sends it: the request time is on the event (the receiver stamps it as receivedAt).
  const event = { ...o.event, requestContext: { ...o.event.requestContext, timeEpoch } };
  const entry = bareEntry(o.event, o.bus, timeEpoch);
  const bare = await buildBareDefault(join(o.outDir, 'bare-default.cjs'));
  const bareProject = await buildBareProject(join(o.outDir, 'bare-project.mjs'));
  const both = { receiver: o.receiverBundle, bare, event, entry };

  const processes = o.smoke ? 2 : 5;
  const pairs = o.smoke ? 300 : 4_000;
  const warmup = o.smoke ? 100 : 1_000;
  const cpuCalls = o.smoke ? 100 : 2_000;
  log(`warm, interleaved: ${processes} processes of ${pairs} pairs of calls...`);
  const interleaved: Array<Record<string, number>> = [];
  for (let i = 0; i < processes; i++) {
    interleaved.push(
      await runChild(interleavedScript(both, pairs, warmup, i === 0 ? cpuCalls : 0), o.env, o.root),
    );
  }
  const first = interleaved[0] as Record<string, number>;

  const rounds = o.smoke ? 2 : 7;
  const calls = o.smoke ? 300 : 4_000;
  log(
    `warm, separate processes: ${rounds} rounds of receiver, bare and bare (project options), ${calls} calls each...`,
  );
  const sides = [
    { name: 'handler', script: aloneScript({ receiver: o.receiverBundle, event, entry }, calls, warmup) },
    { name: 'bare', script: aloneScript({ bare, event, entry }, calls, warmup) },
    { name: 'bareProject', script: aloneScript({ bare: bareProject, event, entry }, calls, warmup) },
  ];
  const separate: Record<string, Array<Record<string, number>>> = { handler: [], bare: [], bareProject: [] };
  for (let round = 0; round < rounds; round++) {
    // Rotate the order, so drift on a shared machine does not favour one side.
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(round + k) % sides.length] as (typeof sides)[number];
      (separate[side.name] as Array<Record<string, number>>).push(await runChild(side.script, o.env, o.root));
    }
  }
  const us = (name: string) => (separate[name] as Array<Record<string, number>>).map((r) => r.us as number);
  const cpu = (name: string) =>
    (separate[name] as Array<Record<string, number>>).map((r) => r.cpuUs as number);

  log(
    `warm, what the deadline costs: ${processes} processes of PutEvents plain, with a signal, with deadline.run...`,
  );
  const deadlineBundle = join(o.outDir, 'deadline-variants.mjs');
  await esbuild.build({ ...esbuildOptions('receiver', deadlineBundle), entryPoints: [DEADLINE_ENTRY] });
  const deadlineRuns: Array<Record<string, number>> = [];
  for (let i = 0; i < processes; i++) {
    deadlineRuns.push(await runChild(deadlineScript(deadlineBundle, entry, pairs, warmup), o.env, o.root));
  }
  const of = (key: string) => spread(deadlineRuns.map((r) => r[key] as number));

  log('warm, where the time goes: one interleaved process under the CPU profiler...');
  const profileDir = join(o.outDir, 'profile');
  mkdirSync(profileDir, { recursive: true });
  const receiverMapped = await buildReceiverWithMap(
    o.receiverBundle,
    join(profileDir, 'receiver', 'index.mjs'),
  );
  const bareMapped = await buildBareDefault(join(profileDir, 'bare-default.cjs'), true);
  const profileFile = join(profileDir, 'warm.cpuprofile');
  const profiledPairs = o.smoke ? 300 : 4_000;
  await runChild(
    interleavedScript(
      { ...both, receiver: receiverMapped, bare: bareMapped },
      profiledPairs,
      warmup,
      0,
      profileFile,
    ),
    o.env,
    o.root,
  );
  const breakdown = {
    calls: profiledPairs,
    ...attribute(profileFile, { receiver: receiverMapped, bare: bareMapped }, profiledPairs),
  };

  return {
    handlerUs: first.handlerUs as number,
    bareUs: first.bareUs as number,
    ratio: (first.handlerUs as number) / (first.bareUs as number),
    calls: first.calls as number,
    cpuUs: first.cpuUs as number,
    logBytesPerWebhook: first.logBytesPerWebhook as number,
    rssKb: first.rssKb as number,
    interleaved: {
      processes,
      callsPerProcess: pairs,
      ratio: spread(interleaved.map((r) => (r.handlerUs as number) / (r.bareUs as number))),
      handlerUs: spread(interleaved.map((r) => r.handlerUs as number)),
      bareUs: spread(interleaved.map((r) => r.bareUs as number)),
    },
    separate: {
      rounds,
      callsPerProcess: calls,
      ratio: spread(us('handler').map((h, i) => h / (us('bare')[i] as number))),
      projectOptionsRatio: spread(us('bareProject').map((p, i) => p / (us('bare')[i] as number))),
      handlerUs: spread(us('handler')),
      bareUs: spread(us('bare')),
      bareProjectUs: spread(us('bareProject')),
      handlerCpuUs: spread(cpu('handler')),
      bareCpuUs: spread(cpu('bare')),
    },
    breakdown,
    deadlineCost: { plainUs: of('plainUs'), signalUs: of('signalUs'), deadlineUs: of('deadlineUs') },
    bareBundleBytes: readFileSync(bare).byteLength,
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

/** Where a source file belongs: its npm package, or our own file. */
function packageOf(source: string): string {
  const at = source.lastIndexOf('node_modules/');
  if (at >= 0) {
    const parts = source.slice(at + 'node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
  }
  const ours = source.indexOf('functions/');
  return ours >= 0 ? source.slice(ours) : source;
}

/**
 * Self time per call (µs) of a CPU profile, by side (the bundle a frame is in; node's own frames go to
 * the side of the nearest bundle frame below them on the stack) and by package (from the source maps).
 */
function attribute(
  profileFile: string,
  bundles: { receiver: string; bare: string },
  calls: number,
): { receiver: Record<string, number>; bare: Record<string, number>; shared: Record<string, number> } {
  const profile = JSON.parse(readFileSync(profileFile, 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const urls = new Map<string, 'receiver' | 'bare'>([
    [pathToFileURL(bundles.receiver).href, 'receiver'],
    [pathToFileURL(bundles.bare).href, 'bare'],
    [bundles.bare, 'bare'],
  ]);
  const maps = {
    receiver: new SourceMap(JSON.parse(readFileSync(`${bundles.receiver}.map`, 'utf8'))),
    bare: new SourceMap(JSON.parse(readFileSync(`${bundles.bare}.map`, 'utf8'))),
  };
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const selfUs = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const result = { receiver: {}, bare: {}, shared: {} } as Record<
    'receiver' | 'bare' | 'shared',
    Record<string, number>
  >;
  const add = (side: 'receiver' | 'bare' | 'shared', key: string, us: number) => {
    result[side][key] = (result[side][key] ?? 0) + us / calls;
  };
  for (const [id, us] of selfUs) {
    const node = byId.get(id) as ProfileNode;
    const side = urls.get(node.callFrame.url);
    if (side) {
      const found = maps[side].findEntry(node.callFrame.lineNumber, node.callFrame.columnNumber) as {
        originalSource?: string;
      };
      add(side, found.originalSource ? packageOf(found.originalSource) : '(unmapped)', us);
      continue;
    }
    const name = node.callFrame.functionName;
    if (name === '(garbage collector)' || name === '(idle)' || name === '(program)' || name === '(root)') {
      add('shared', name, us);
      continue;
    }
    // Node's own code (http, streams, timers, crypto): the side whose frame called it.
    let up = parent.get(id);
    let caller: 'receiver' | 'bare' | undefined;
    while (up !== undefined && caller === undefined) {
      caller = urls.get((byId.get(up) as ProfileNode).callFrame.url);
      up = parent.get(up);
    }
    if (caller) add(caller, '(node, called from this side)', us);
    else add('shared', '(node: I/O callbacks, timers, the bench loop)', us);
  }
  return result;
}

/** Sums the per-package self times of one side. */
export const total = (record: Record<string, number>) => Object.values(record).reduce((a, b) => a + b, 0);

export function formatWarm(w: WarmResult): string {
  const f = (n: number, d = 3) => n.toFixed(d);
  const s = (x: Spread, d = 3) => `**${f(x.median, d)}** (${f(x.min, d)}–${f(x.max, d)})`;
  const top = (record: Record<string, number>, k = 8) =>
    Object.entries(record)
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([key, us]) => `${key} ${f(us, 1)}`)
      .join('; ');
  const lines = [
    `| warm path | value |`,
    `| --- | --- |`,
    `| interleaved, one process: receiver vs bare PutEvents (esbuild defaults), ratio of medians | ${s(w.interleaved.ratio)} over ${w.interleaved.processes} processes of ${w.interleaved.callsPerProcess} pairs; receiver ${f(w.interleaved.handlerUs.median, 0)} µs, bare ${f(w.interleaved.bareUs.median, 0)} µs |`,
    `| separate processes: receiver vs bare (esbuild defaults), per round | ${s(w.separate.ratio)} over ${w.separate.rounds} rounds of ${w.separate.callsPerProcess} calls; receiver ${f(w.separate.handlerUs.median, 0)} µs, bare ${f(w.separate.bareUs.median, 0)} µs |`,
    `| separate processes: bare with the project's esbuild options vs bare with the defaults | ${s(w.separate.projectOptionsRatio)}; ${f(w.separate.bareProjectUs.median, 0)} µs |`,
    `| separate processes: CPU per call, receiver vs bare | ${f(w.separate.handlerCpuUs.median, 0)} µs vs ${f(w.separate.bareCpuUs.median, 0)} µs |`,
    `| what the deadline costs: one PutEvents plain / with an AbortSignal / through deadline.run (one client, interleaved; medians over ${w.interleaved.processes} processes) | ${f(w.deadlineCost.plainUs.median, 0)} / ${f(w.deadlineCost.signalUs.median, 0)} / ${f(w.deadlineCost.deadlineUs.median, 0)} µs: the signal adds ${f(w.deadlineCost.signalUs.median - w.deadlineCost.plainUs.median, 0)} µs, deadline.run ${f(w.deadlineCost.deadlineUs.median - w.deadlineCost.plainUs.median, 0)} µs in all |`,
    `| profile (interleaved, ${w.breakdown.calls} pairs): CPU self time per call, receiver | ${f(total(w.breakdown.receiver), 1)} µs: ${top(w.breakdown.receiver)} |`,
    `| profile: CPU self time per call, bare | ${f(total(w.breakdown.bare), 1)} µs: ${top(w.breakdown.bare)} |`,
    `| profile: not attributable to a side, per pair | ${f(total(w.breakdown.shared), 1)} µs: ${top(w.breakdown.shared)} |`,
  ];
  return lines.join('\n');
}
