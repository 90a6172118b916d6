#!/usr/bin/env node
/**
 * `npm run mutation`, after Stryker: fails when any one file scores under `thresholds.break` in
 * stryker.config.mjs (Stryker itself only compares the score of all files together with it).
 *
 * Reads the JSON report Stryker just wrote (reports/mutation/mutation.json, or the path given) and scores
 * each file as Stryker does: (killed + timed out) / (killed + timed out + survived + no coverage).
 * Compile errors, runtime errors and ignored mutants are not counted; a file with none of the counted
 * kinds has no score and does not fail.
 *
 *   npx tsx bin/mutation-per-file.ts [report.json]
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A mutant's status in Stryker's JSON report (mutation-testing-report-schema). */
export type MutantStatus =
  | 'Killed'
  | 'Survived'
  | 'NoCoverage'
  | 'Timeout'
  | 'CompileError'
  | 'RuntimeError'
  | 'Ignored'
  | 'Pending';

/** The part of Stryker's JSON report this check reads. */
export interface MutationReport {
  readonly files: Readonly<Record<string, { readonly mutants: readonly { readonly status: string }[] }>>;
}

export interface FileScore {
  readonly file: string;
  readonly detected: number;
  readonly valid: number;
  /** Percent, as Stryker computes it; undefined when the file has no valid mutant. */
  readonly score: number | undefined;
}

const DETECTED: ReadonlySet<string> = new Set<MutantStatus>(['Killed', 'Timeout']);
const UNDETECTED: ReadonlySet<string> = new Set<MutantStatus>(['Survived', 'NoCoverage']);
const NOT_COUNTED: ReadonlySet<string> = new Set<MutantStatus>(['CompileError', 'RuntimeError', 'Ignored']);

/** Each file's score, sorted by path. Throws on a status that no finished run has (Pending, or unknown). */
export function fileScores(report: MutationReport): FileScore[] {
  if (typeof report?.files !== 'object' || report.files === null)
    throw new Error('not a Stryker mutation report: it has no "files" object');
  return Object.entries(report.files)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([file, { mutants }]) => {
      let detected = 0;
      let undetected = 0;
      for (const { status } of mutants) {
        if (DETECTED.has(status)) detected++;
        else if (UNDETECTED.has(status)) undetected++;
        else if (!NOT_COUNTED.has(status))
          throw new Error(`${file}: a mutant has status "${status}"; the report is from an unfinished run`);
      }
      const valid = detected + undetected;
      return { file, detected, valid, score: valid > 0 ? (detected / valid) * 100 : undefined };
    });
}

/** The files whose score is under `minimum` percent (a file with no valid mutant is never one). */
export function filesBelow(report: MutationReport, minimum: number): FileScore[] {
  return fileScores(report).filter((f) => f.score !== undefined && f.score < minimum);
}

/** What the check prints: one line per file under the minimum, or one line saying all passed. */
export function describeResult(report: MutationReport, minimum: number): { ok: boolean; text: string } {
  const scores = fileScores(report);
  const below = scores.filter((f) => f.score !== undefined && f.score < minimum);
  if (below.length === 0)
    return { ok: true, text: `mutation score per file: all ${scores.length} files at ${minimum} % or more` };
  const lines = below.map(
    (f) => `  ${f.file}: ${(f.score ?? 0).toFixed(2)} % (${f.detected} of ${f.valid} mutants detected)`,
  );
  return {
    ok: false,
    text: `mutation score per file: ${below.length} of ${scores.length} files under ${minimum} % (thresholds.break in stryker.config.mjs):\n${lines.join('\n')}`,
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const root = new URL('..', import.meta.url);
  const configUrl = new URL('stryker.config.mjs', root).href;
  const config = ((await import(configUrl)) as { default: { thresholds?: { break?: number | null } } })
    .default;
  const minimum = config.thresholds?.break;
  if (typeof minimum !== 'number') {
    process.stderr.write('mutation-per-file: stryker.config.mjs sets no thresholds.break to check against\n');
    return 1;
  }
  if (argv.length > 1) {
    process.stderr.write('usage: npx tsx bin/mutation-per-file.ts [reports/mutation/mutation.json]\n');
    return 2;
  }
  const path = resolve(argv[0] ?? 'reports/mutation/mutation.json');
  let report: MutationReport;
  try {
    report = JSON.parse(readFileSync(path, 'utf8')) as MutationReport;
  } catch (error) {
    process.stderr.write(
      `mutation-per-file: cannot read the Stryker JSON report ${path} (${(error as Error).message}); run \`npx stryker run\` first (its json reporter writes it)\n`,
    );
    return 1;
  }
  try {
    const { ok, text } = describeResult(report, minimum);
    (ok ? process.stdout : process.stderr).write(`${text}\n`);
    return ok ? 0 : 1;
  } catch (error) {
    process.stderr.write(`mutation-per-file: ${path}: ${(error as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
