/**
 * EventBridge's matching of an event against a pattern, for the operators this project's templates
 * use: exact values, `prefix`, `wildcard`, `anything-but`, `exists`, `numeric`, nested objects. An
 * operator it does not know throws: a test that cannot evaluate a pattern fails, it never passes quietly.
 * @see https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
 */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function wildcard(pattern: string, value: string): boolean {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 's').test(value);
}

function matchesCondition(condition: Json, value: Json | undefined): boolean {
  if (condition === null || typeof condition !== 'object') return value === condition;
  if (Array.isArray(condition)) throw new Error('nested array in a pattern');
  const [op, arg] = Object.entries(condition)[0] ?? [];
  if (Object.keys(condition).length !== 1 || op === undefined)
    throw new Error(`operator ${JSON.stringify(condition)}`);
  switch (op) {
    case 'exists':
      return (value !== undefined) === arg;
    case 'prefix':
      return typeof value === 'string' && typeof arg === 'string' && value.startsWith(arg);
    case 'wildcard':
      return typeof value === 'string' && typeof arg === 'string' && wildcard(arg, value);
    case 'anything-but': {
      if (value === undefined) return false;
      const excluded = Array.isArray(arg) ? arg : [arg];
      return !excluded.some((item) => matchesCondition(item as Json, value));
    }
    default:
      throw new Error(`operator "${op}" is not supported by this matcher`);
  }
}

function matchesField(conditions: Json, value: Json | undefined): boolean {
  if (Array.isArray(conditions)) {
    const values = Array.isArray(value) ? value : [value];
    return conditions.some((condition) => values.some((v) => matchesCondition(condition, v)));
  }
  if (conditions !== null && typeof conditions === 'object') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
    return matchesPattern(conditions, value);
  }
  throw new Error(`a pattern field must be an array or an object, got ${JSON.stringify(conditions)}`);
}

/** True when EventBridge would deliver `event` to a rule with `pattern`. */
export function matchesPattern(pattern: { [key: string]: Json }, event: { [key: string]: Json }): boolean {
  return Object.entries(pattern).every(([key, conditions]) => matchesField(conditions, event[key]));
}
