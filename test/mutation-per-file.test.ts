/**
 * bin/mutation-per-file.ts, the per-file half of `npm run mutation`'s threshold: scores each file of a
 * small Stryker JSON report as Stryker does, and fails naming every file under thresholds.break.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  describeResult,
  fileScores,
  filesBelow,
  type MutantStatus,
  type MutationReport,
} from '../bin/mutation-per-file.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STRYKER_CONFIG = new URL('../stryker.config.mjs', import.meta.url).href;

/** A file's entry with the given number of mutants of each status. */
function file(counts: Partial<Record<MutantStatus, number>>): { mutants: { id: string; status: string }[] } {
  const mutants = Object.entries(counts).flatMap(([status, n]) =>
    Array.from({ length: n }, (_, i) => ({ id: `${status}-${i}`, status })),
  );
  return { mutants };
}

/** Counted mutants beside the ones that are not: if any of these were counted, each score below would move. */
const UNCOUNTED = { CompileError: 40, RuntimeError: 30, Ignored: 50 } as const;

const REPORT = {
  schemaVersion: '2',
  thresholds: { high: 90, low: 85 },
  files: {
    // 849 / 1000 = 84.9 %; with no-coverage mutants left out it would be 849 / 949 = 89.5 %.
    'functions/low.ts': file({ Killed: 800, Timeout: 49, Survived: 100, NoCoverage: 51, ...UNCOUNTED }),
    // 17 / 20 = 85 % exactly; counting the uncounted ones as undetected would give 17 / 140.
    'functions/exact.ts': file({ Killed: 17, Survived: 3, ...UNCOUNTED }),
    // 17 / 20 = 85 % only if a timeout counts as detected.
    'functions/timeouts.ts': file({ Timeout: 17, NoCoverage: 3 }),
    // Nothing to score: not a failure.
    'functions/ignored.ts': file({ Ignored: 12 }),
    'functions/uncompilable.ts': file({ CompileError: 5, Ignored: 1 }),
    // 0 %: every mutant survived.
    'functions/none.ts': file({ Survived: 2 }),
  },
} satisfies MutationReport & Record<string, unknown>;

const PASSING = {
  files: {
    'functions/exact.ts': REPORT.files['functions/exact.ts'],
    'functions/ignored.ts': REPORT.files['functions/ignored.ts'],
  },
};

describe('mutation score per file', () => {
  it('scores each file as Stryker does: (killed + timeout) / (killed + timeout + survived + no coverage)', () => {
    const byFile = Object.fromEntries(fileScores(REPORT).map((f) => [f.file, f]));
    expect(byFile['functions/low.ts']).toEqual({
      file: 'functions/low.ts',
      detected: 849,
      valid: 1000,
      score: expect.closeTo(84.9, 10),
    });
    expect(byFile['functions/exact.ts']?.score).toBe(85);
    expect(byFile['functions/timeouts.ts']?.score).toBe(85);
    expect(byFile['functions/ignored.ts']).toEqual({
      file: 'functions/ignored.ts',
      detected: 0,
      valid: 0,
      score: undefined,
    });
    expect(byFile['functions/none.ts']?.score).toBe(0);
  });

  it('a file at 84.9 % fails, 85 % passes, a file with only ignored or invalid mutants is no failure', () => {
    expect(filesBelow(REPORT, 85).map((f) => f.file)).toEqual(['functions/low.ts', 'functions/none.ts']);
    expect(filesBelow(PASSING, 85)).toEqual([]);
  });

  it('refuses a report from an unfinished run (a pending mutant) or something that is not a report', () => {
    expect(() => fileScores({ files: { 'a.ts': file({ Killed: 1, Pending: 1 }) } })).toThrow(
      'a.ts: a mutant has status "Pending"',
    );
    expect(() => fileScores({} as MutationReport)).toThrow('no "files" object');
  });

  it('checks against thresholds.break from stryker.config.mjs, which is 85', async () => {
    const config = (
      (await import(STRYKER_CONFIG)) as { default: { thresholds?: { break?: number }; reporters?: string[] } }
    ).default;
    expect(config.thresholds?.break).toBe(85);
    expect(config.reporters).toContain('json');
    expect(describeResult(PASSING, 85)).toEqual({
      ok: true,
      text: 'mutation score per file: all 2 files at 85 % or more',
    });
  });
});

describe('npm run mutation runs the check after Stryker', () => {
  it('as the mutation script, only when Stryker succeeded (so the report is this run’s)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.mutation).toBe('stryker run && tsx bin/mutation-per-file.ts');
  });

  function run(report: unknown): Promise<{ code: number; stdout: string; stderr: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'mutation-report-'));
    const path = join(dir, 'mutation.json');
    if (report !== undefined) writeFileSync(path, JSON.stringify(report));
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', 'bin/mutation-per-file.ts', path],
        { cwd: ROOT, timeout: 60_000 },
        (error, stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
        },
      );
    });
  }

  it('exits 1 naming every file under 85 % and no other', async () => {
    const { code, stderr } = await run(REPORT);
    expect(code).toBe(1);
    expect(stderr).toContain('2 of 6 files under 85 %');
    expect(stderr).toContain('functions/low.ts: 84.90 % (849 of 1000 mutants detected)');
    expect(stderr).toContain('functions/none.ts: 0.00 % (0 of 2 mutants detected)');
    for (const passing of ['exact.ts', 'timeouts.ts', 'ignored.ts', 'uncompilable.ts'])
      expect(stderr).not.toContain(passing);
  });

  it('exits 0 when every file is at 85 % or more', async () => {
    const { code, stdout, stderr } = await run(PASSING);
    expect(stderr).toBe('');
    expect(stdout).toBe('mutation score per file: all 2 files at 85 % or more\n');
    expect(code).toBe(0);
  });

  it('exits 1 with what to do when there is no report', async () => {
    const { code, stderr } = await run(undefined);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /cannot read the Stryker JSON report .*mutation\.json .*run `npx stryker run` first/,
    );
  });
});
