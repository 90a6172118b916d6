/**
 * Runs an AppSync Events handler bundle (APPSYNC_JS) on this machine, as the local twin and the tests do:
 * the very code a deploy ships, loaded as an ES module next to a stand-in for `@aws-appsync/utils` whose
 * `util.unauthorized()` and `util.error()` stop the handler, as AppSync's do.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What `util.unauthorized()` or `util.error()` raised: AppSync answers the client with it. */
export class AppSyncHandlerError extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
    this.name = 'AppSyncHandlerError';
  }
}

const UTILS_STAND_IN = `
const stop = (errorType, message) => {
  const error = new Error(message);
  error.appsyncErrorType = errorType;
  throw error;
};
export const util = {
  unauthorized: () => stop('Unauthorized', 'Unauthorized'),
  error: (message, type) => stop(type ?? 'Error', String(message)),
};
export const runtime = { earlyReturn: (value) => { const e = new Error('earlyReturn'); e.earlyReturn = value; throw e; } };
`;

export interface AppSyncHandlers {
  /** Runs onSubscribe: resolves when it allows, rejects with {@link AppSyncHandlerError} when it refuses. */
  subscribe(ctx: unknown): Promise<void>;
}

/** Loads a handler bundle; `close()` removes its temporary folder. */
export async function loadAppSyncHandlers(code: string): Promise<AppSyncHandlers & { close(): void }> {
  const folder = mkdtempSync(join(tmpdir(), 'zapi-appsync-'));
  const utils = join(folder, 'node_modules', '@aws-appsync', 'utils');
  mkdirSync(utils, { recursive: true });
  writeFileSync(
    join(utils, 'package.json'),
    JSON.stringify({ name: '@aws-appsync/utils', type: 'module', main: 'index.js' }),
  );
  writeFileSync(join(utils, 'index.js'), UTILS_STAND_IN);
  writeFileSync(join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
  const file = join(folder, 'handler.mjs');
  writeFileSync(file, code);
  const module = (await import(pathToFileURL(file).href)) as { onSubscribe?: (ctx: unknown) => unknown };
  const onSubscribe = module.onSubscribe;
  return {
    async subscribe(ctx) {
      if (onSubscribe === undefined) return;
      try {
        onSubscribe(ctx);
      } catch (error) {
        const type = (error as { appsyncErrorType?: unknown }).appsyncErrorType;
        if (typeof type === 'string') throw new AppSyncHandlerError(type, (error as Error).message);
        // A handler that fails on its own is an error AppSync reports as such.
        throw new AppSyncHandlerError('HandlerError', error instanceof Error ? error.message : String(error));
      }
    },
    close: () => rmSync(folder, { recursive: true, force: true }),
  };
}
