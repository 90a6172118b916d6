/** Finds the shipped bundle of a Lambda in a synthesized cloud assembly. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Template } from 'aws-cdk-lib/assertions';

/** Directory of the bundle of the function whose logical id starts with `prefix`. */
export function bundleDirectory(template: Template, assemblyDirectory: string, prefix: string): string {
  const functions = template.findResources('AWS::Lambda::Function');
  const match = Object.entries(functions).find(([id]) => id.startsWith(prefix));
  if (!match) throw new Error(`no function ${prefix}* in the template`);
  const key = (match[1] as { Properties: { Code: { S3Key: string } } }).Properties.Code.S3Key;
  const directory = join(assemblyDirectory, `asset.${key.replace(/\.zip$/, '')}`);
  if (!existsSync(join(directory, 'index.mjs'))) throw new Error(`no index.mjs in ${directory}`);
  return directory;
}
