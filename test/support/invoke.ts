/**
 * Runs code in a fresh Node process (as Lambda would: a cold module, environment set before import):
 * `runNodeScript` for any ES module script, `invokeBundle` for a bundled handler.
 */
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';

export interface ScriptResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs an ES module script in a fresh process with exactly `env` (plus PATH); rejects on a non-zero exit. */
export function runNodeScript(
  script: string,
  env: Record<string, string>,
  cwd?: string,
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      ...(cwd !== undefined && { cwd }),
      env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`node exited ${code}: ${stderr || stdout}`));
      resolve({ stdout, stderr });
    });
  });
}

export interface InvokeResult extends ScriptResult {
  readonly results: unknown[];
}

/** Invokes a bundled handler per event, with a Lambda-like context whose deadline is `timeoutMs` away. */
export async function invokeBundle(
  bundleFile: string,
  events: unknown[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<InvokeResult> {
  const script = `
    const { handler } = await import(${JSON.stringify(pathToFileURL(bundleFile).href)});
    const events = JSON.parse(process.env.__EVENTS);
    const results = [];
    for (const event of events) {
      const deadline = Date.now() + ${timeoutMs};
      const context = { awsRequestId: 'local', getRemainingTimeInMillis: () => deadline - Date.now() };
      try { results.push(await handler(event, context)); } catch (error) { results.push({ error: String(error && error.message) }); }
    }
    process.stdout.write('\\n__RESULTS__' + JSON.stringify(results) + '\\n');
  `;
  const { stdout, stderr } = await runNodeScript(script, { ...env, __EVENTS: JSON.stringify(events) });
  const marker = stdout.lastIndexOf('__RESULTS__');
  if (marker < 0) throw new Error(`bundle printed no results: ${stderr || stdout}`);
  return {
    results: JSON.parse(stdout.slice(marker + '__RESULTS__'.length)) as unknown[],
    stdout: stdout.slice(0, marker),
    stderr,
  };
}
