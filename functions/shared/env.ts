/** Environment readers every function uses: names in messages, never values beyond a number. */

/** A required variable, trimmed. */
export function requiredEnv(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

/** A whole number from `min` up, or the fallback when unset. */
export function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`environment variable ${name} must be a whole number of at least ${min}, got "${raw}"`);
  return value;
}
