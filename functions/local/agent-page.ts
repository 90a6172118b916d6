/**
 * The live view `npm start` serves at `/`: the example agent page (examples/agent-page/) with its
 * settings written in, and its script bundled from source on first request (esbuild, as a user would).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AgentPageConfig } from '../../examples/agent-page/main.ts';

const PAGE = fileURLToPath(new URL('../../examples/agent-page/index.html', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../examples/agent-page/main.ts', import.meta.url));

let bundled: string | undefined;

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`, no line separators). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export const agentPage = {
  /** The page as an agent opens it against AWS: no settings, the form asks for them. */
  blank(): string {
    return readFileSync(PAGE, 'utf8').replace(
      '<script type="module" src="./main.js"></script>',
      '<script type="module" src="/agent-page.js"></script>',
    );
  },
  html(config: AgentPageConfig): string {
    const page = readFileSync(PAGE, 'utf8');
    return page.replace(
      '<script type="module" src="./main.js"></script>',
      `<script>window.ZAPI_PRESENCE_CONFIG = ${scriptJson(config)};</script>\n<script type="module" src="/agent-page.js"></script>`,
    );
  },
  script(): string {
    if (bundled === undefined) {
      const esbuild = createRequire(import.meta.url)('esbuild') as {
        buildSync(options: Record<string, unknown>): { outputFiles: { text: string }[] };
      };
      bundled =
        esbuild.buildSync({
          entryPoints: [SCRIPT],
          bundle: true,
          format: 'esm',
          platform: 'browser',
          target: 'es2022',
          write: false,
          legalComments: 'none',
          logLevel: 'warning',
        }).outputFiles[0]?.text ?? '';
    }
    return bundled;
  },
};
