/**
 * Invokes a bundled handler in a fresh Node process (as Lambda would: a cold module, environment set
 * before import), returning its answers and what it printed.
 */
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';

export interface InvokeResult {
  readonly results: unknown[];
  readonly stdout: string;
  readonly stderr: string;
}

export function invokeBundle(
  bundleFile: string,
  events: unknown[],
  env: Record<string, string>,
): Promise<InvokeResult> {
  const script = `
    const { handler } = await import(${JSON.stringify(pathToFileURL(bundleFile).href)});
    const events = JSON.parse(process.env.__EVENTS);
    const results = [];
    const deadline = Date.now() + 60000;
    const context = { awsRequestId: 'local', getRemainingTimeInMillis: () => deadline - Date.now() };
    for (const event of events) {
      try { results.push(await handler(event, context)); } catch (error) { results.push({ error: String(error && error.message) }); }
    }
    process.stdout.write('\\n__RESULTS__' + JSON.stringify(results) + '\\n');
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', ...env, __EVENTS: JSON.stringify(events) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const marker = stdout.lastIndexOf('__RESULTS__');
      if (code !== 0 || marker < 0) return reject(new Error(`bundle exited ${code}: ${stderr || stdout}`));
      resolve({
        results: JSON.parse(stdout.slice(marker + '__RESULTS__'.length)) as unknown[],
        stdout: stdout.slice(0, marker),
        stderr,
      });
    });
  });
}
