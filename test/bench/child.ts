/** Pieces of the scripts benches run in fresh Node processes. */

/** Gives an ES-module child script `require`. */
export const CHILD_PRELUDE = `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);`;

/**
 * Peak resident memory of the child itself. On Linux a spawned child's maxRSS starts from its parent's,
 * so read the kernel's high-water mark (VmHWM) instead; elsewhere fall back to maxRSS.
 */
export const PEAK_RSS_KB = `(() => {
  try {
    const m = /VmHWM:\\s+(\\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {}
  return process.resourceUsage().maxRSS;
})()`;
