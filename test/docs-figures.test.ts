/**
 * Every cost figure in the README comes from the last `npm run bench` (pasted into BENCHMARKS.md), and
 * BENCHMARKS.md's template-derived lines still match the template the code synthesizes today: an alarm,
 * a key or a dashboard added without a new bench run fails here.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { FIXED_COST_VARIANTS, templateCost } from './bench/fixed-cost.ts';
import { LIST_PRICES, PRICE_REGIONS, type PriceRegion } from './bench/prices.ts';
import { buildApp } from './support/synth.ts';

const ROOT = new URL('..', import.meta.url);
const README = readFileSync(new URL('README.md', ROOT), 'utf8');
const BENCHMARKS = readFileSync(new URL('BENCHMARKS.md', ROOT), 'utf8');
/** The instance the bench synthesizes with (test/bench/run.ts). */
const BENCH_INSTANCE = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';

/** The text of BENCHMARKS.md from the bench's fixed-cost table of a region on (us-east-1's comes first). */
function fromFixedCostOf(region: PriceRegion): string {
  const heading = `healthy month of two instances; ${region} list prices, no free tier):`;
  const at = BENCHMARKS.indexOf(heading);
  if (at < 0) throw new Error(`BENCHMARKS.md has no fixed-cost table of ${region}`);
  return BENCHMARKS.slice(at);
}

/** The cells of a row of the bench's fixed-cost table, by its first cell. */
function fixedCostRow(label: string, region: PriceRegion = 'us-east-1'): string[] {
  const cells = (line: string) =>
    line
      .trim()
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim());
  // The table's header row starts with an empty cell; the bench prints it unpadded, a formatter pads it.
  const line = fromFixedCostOf(region)
    .split('\n')
    .find((l) => l.trim().startsWith('|') && cells(l)[0] === label && cells(l).length > 3);
  if (line === undefined) throw new Error(`BENCHMARKS.md has no fixed-cost row "${label}"`);
  return cells(line).slice(1);
}

const variantsOf = (region: PriceRegion = 'us-east-1') => fixedCostRow('', region);
const dollars = (cell: string) => {
  const match = /\$(\d+\.\d\d)/.exec(cell);
  if (!match) throw new Error(`no dollar figure in "${cell}"`);
  return match[1] as string;
};
const totalsOf = (region: PriceRegion = 'us-east-1'): Record<string, string> =>
  Object.fromEntries(
    fixedCostRow('**fixed cost a month**', region).map((cell, i) => [variantsOf(region)[i], dollars(cell)]),
  );

/** The bench's cost-by-region table: fixed (default, with the store) and per million, by region. */
function byRegion(region: PriceRegion): string[] {
  const line = BENCHMARKS.split('\n').find((l) => new RegExp(`^\\|\\s*${region}\\s*\\|\\s*\\$`).test(l));
  if (line === undefined) throw new Error(`BENCHMARKS.md has no cost-by-region row for ${region}`);
  return line
    .trim()
    .slice(1, -1)
    .split('|')
    .slice(1)
    .map((cell) => dollars(cell.trim()));
}

/** The variable cost per million of the bench's cost table (`| **variable total** | **$2.530** ...`). */
function variablePerMillion(): number {
  const match = /^\|\s*\*\*variable total\*\*\s*\|\s*\*\*\$(\d+\.\d+)\*\*/m.exec(BENCHMARKS);
  if (!match) throw new Error('BENCHMARKS.md has no variable total');
  return Number(match[1]);
}

describe('BENCHMARKS.md, fixed cost', () => {
  it('prices every variant the bench prices, the default first', () => {
    expect(variantsOf()).toEqual(FIXED_COST_VARIANTS.map((v) => v.name));
    expect(Number(totalsOf().default)).toBeLessThanOrEqual(3);
  });

  it.each(
    PRICE_REGIONS.flatMap((region) =>
      FIXED_COST_VARIANTS.map((v, i) => [region, v.name, v.context, i] as const),
    ),
  )(
    'matches the template synthesized today, at %s prices: %s',
    (region, _name, context, i) => {
      expect(variantsOf(region)).toEqual(FIXED_COST_VARIANTS.map((v) => v.name));
      const { stack } = buildApp({ instanceId: BENCH_INSTANCE, ...context }, { nag: false });
      const cost = templateCost(Template.fromStack(stack), LIST_PRICES[region]);
      const cell = (label: string) => fixedCostRow(label, region)[i];
      expect(cell('alarms')).toBe(
        `${cost.alarms.count} reading ${cost.alarms.metricsRead} metrics: $${cost.alarms.dollars.toFixed(2)}`,
      );
      expect(cell('KMS keys')).toBe(`${cost.kmsKeys.count}: $${cost.kmsKeys.dollars.toFixed(2)}`);
      expect(cell('dashboards')).toBe(`${cost.dashboards.count}: $${cost.dashboards.dollars.toFixed(2)}`);
      expect(cell('SQS polls of idle event sources')).toBe(
        `${cost.sqsPolling.queues} queues: $${cost.sqsPolling.dollars.toFixed(2)}`,
      );
    },
    60_000,
  );

  it('gives each region’s totals in the cost-by-region table, as its own tables do', () => {
    for (const region of PRICE_REGIONS) {
      const totals = totalsOf(region);
      const [fixed, withStore] = byRegion(region);
      expect([fixed, withStore], region).toEqual([totals.default, totals['presence store']]);
    }
  });
});

describe('README, cost', () => {
  it('states the fixed and per-million cost from the bench, and the clean-up command, before the deploy steps', () => {
    const fixedTotals = totalsOf();
    const deploy = README.indexOf('## Deploy');
    // Wrapped lines are one text.
    const firstScreen = README.slice(0, deploy).replace(/\s+/g, ' ');
    expect(deploy).toBeGreaterThan(0);
    expect(firstScreen).toContain(`**$${fixedTotals.default} a month fixed**`);
    expect(firstScreen).toContain(`**$${variablePerMillion().toFixed(2)} per million callbacks**`);
    expect(firstScreen).toContain(`$${fixedTotals['presence store']} a month with the presence store`);
    expect(firstScreen).toContain('npm run destroy');
    // São Paulo, where the users are: the bench's figures for sa-east-1 too.
    const [fixed, withStore, perMillion] = byRegion('sa-east-1');
    expect(firstScreen).toContain(`São Paulo (sa-east-1), **$${fixed} a month fixed**`);
    expect(firstScreen).toContain(`**$${perMillion} per million callbacks**`);
    expect(firstScreen).toContain(`$${withStore} a month with the presence store`);
    // Within the first screen: the first 40 lines.
    const lines = README.split('\n');
    const index = (text: string) => lines.findIndex((l) => l.includes(text));
    expect(index(`**$${fixedTotals.default} a month fixed**`)).toBeLessThan(40);
    expect(index('npm run destroy')).toBeLessThan(40);
  });

  it('quotes no other dollar figure that the bench does not print', () => {
    const fixedTotals = totalsOf();
    const printed = new Set([
      ...Object.values(fixedTotals),
      variablePerMillion().toFixed(2),
      ...[...BENCHMARKS.matchAll(/\$(\d+\.\d+)/g)].map((m) => m[1] as string),
    ]);
    // Prices ($0.30 a series, $3 a dashboard, $1 a key) are AWS's, not measurements: whole dollars and
    // the list prices are allowed.
    const PRICES = new Set(['0.30', '0.10', '1.00', '3.00', '2.00']);
    for (const [, figure] of README.matchAll(/\$(\d+\.\d+)/g)) {
      if (PRICES.has(figure as string)) continue;
      expect(printed, `README quotes $${figure}`).toContain(figure);
    }
  });
});

/** GitHub's heading anchor: lower case, punctuation dropped (but `-` and `_`), spaces to `-`. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

describe('links between the docs', () => {
  const DOCS = [
    'README.md',
    'BENCHMARKS.md',
    ...readdirSync(new URL('docs/', ROOT))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];

  it.each(DOCS)('every relative link of %s names a file that exists, and a heading in it', (doc) => {
    const text = readFileSync(new URL(doc, ROOT), 'utf8').replace(/```[\s\S]*?```/g, '');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (target === undefined || /^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path === '' ? new URL(doc, ROOT) : new URL(path, new URL(doc, ROOT));
      if (!existsSync(file)) {
        broken.push(`${target}: no such file`);
        continue;
      }
      if (anchor === undefined || !file.pathname.endsWith('.md')) continue;
      const headings = [...readFileSync(file, 'utf8').matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
        slug(m[1] as string),
      );
      if (!headings.includes(anchor)) broken.push(`${target}: no heading "${anchor}"`);
    }
    expect(broken).toEqual([]);
  });
});
