/**
 * Stages (`-c stage=NAME`): side-by-side deployments, each with its parameters under a path of its own.
 * An interface module with no runtime imports: lib/config.ts and `npm run webhook-url` both read it.
 */

/** A stage name: a letter, then up to 30 letters, digits and `-` (it is part of the stack's name). */
export const STAGE_PATTERN = /^[A-Za-z][A-Za-z0-9-]{0,30}$/;

/** A default parameter name under `/zapi/` moved to the stage's own path, `/zapi-{stage}/`. */
export function stageParameter(name: string, stage: string | undefined): string {
  return stage === undefined ? name : name.replace(/^\/zapi\//, `/zapi-${stage}/`);
}
