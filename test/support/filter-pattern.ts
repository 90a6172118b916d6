/**
 * CloudWatch Logs' JSON filter patterns, the subset the metric filters of lib/monitoring.ts use, run on a
 * log line: `{ $.field = "value" }`, `!=`, unquoted numbers, `&&`, `||` and parentheses
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html). A field
 * compares as text with a quoted value and as a number with an unquoted one; a field the line does not
 * have matches nothing. So a test can ask of the synthesized filter "does this access-log line count?".
 */

type Node =
  | {
      readonly kind: 'compare';
      readonly field: string;
      readonly op: '=' | '!=';
      readonly value: string | number;
    }
  | { readonly kind: 'and' | 'or'; readonly left: Node; readonly right: Node };

const TOKEN = /\s*(\|\||&&|!=|=|\(|\)|"(?:[^"\\]|\\.)*"|\$\.[A-Za-z0-9_.]+|-?\d+(?:\.\d+)?)/y;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    TOKEN.lastIndex = at;
    const match = TOKEN.exec(text);
    if (!match) throw new Error(`filter pattern: cannot read "${text.slice(at)}"`);
    tokens.push(match[1] as string);
    at = TOKEN.lastIndex;
  }
  return tokens;
}

/** Parses `{ ... }` into a tree. */
export function parseFilterPattern(pattern: string): Node {
  const body = /^\s*\{(.*)\}\s*$/s.exec(pattern)?.[1];
  if (body === undefined) throw new Error(`filter pattern: not a JSON pattern: ${pattern}`);
  const tokens = tokenize(body);
  let i = 0;
  const peek = () => tokens[i];
  const take = (want?: string) => {
    const token = tokens[i++];
    if (token === undefined || (want !== undefined && token !== want))
      throw new Error(`filter pattern: expected ${want ?? 'more'} in ${pattern}`);
    return token;
  };
  const primary = (): Node => {
    if (peek() === '(') {
      take('(');
      const node = or();
      take(')');
      return node;
    }
    const field = take();
    if (!field.startsWith('$.')) throw new Error(`filter pattern: expected a field, got ${field}`);
    const op = take();
    if (op !== '=' && op !== '!=') throw new Error(`filter pattern: unsupported operator ${op}`);
    const raw = take();
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : Number(raw);
    return { kind: 'compare', field: field.slice(2), op, value };
  };
  const and = (): Node => {
    let node = primary();
    while (peek() === '&&') {
      take();
      node = { kind: 'and', left: node, right: primary() };
    }
    return node;
  };
  function or(): Node {
    let node = and();
    while (peek() === '||') {
      take();
      node = { kind: 'or', left: node, right: and() };
    }
    return node;
  }
  const node = or();
  if (i !== tokens.length) throw new Error(`filter pattern: trailing ${tokens.slice(i).join(' ')}`);
  return node;
}

function evaluate(node: Node, record: Record<string, unknown>): boolean {
  if (node.kind !== 'compare') {
    return node.kind === 'and'
      ? evaluate(node.left, record) && evaluate(node.right, record)
      : evaluate(node.left, record) || evaluate(node.right, record);
  }
  const value = node.field
    .split('.')
    .reduce<unknown>((at, key) => (at as Record<string, unknown>)?.[key], record);
  if (value === undefined || value === null) return false;
  const equal = typeof node.value === 'number' ? Number(value) === node.value : String(value) === node.value;
  return node.op === '=' ? equal : !equal;
}

/** True when the JSON log line matches the pattern (a line that is not JSON matches nothing). */
export function matchesFilterPattern(pattern: string, line: string): boolean {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return false;
  }
  if (typeof record !== 'object' || record === null) return false;
  return evaluate(parseFilterPattern(pattern), record as Record<string, unknown>);
}
