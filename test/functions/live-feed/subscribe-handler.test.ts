/**
 * The live feed's onSubscribe handler, as AppSync runs it: the shipped bundle (with its groups claim
 * written in, as lib/ deploys it), loaded next to a stand-in for `@aws-appsync/utils`. Every case of the
 * rule, for Cognito identities and OIDC claims; and the bundle keeps to what APPSYNC_JS runs.
 */
import { parse } from 'acorn';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ALL_INSTANCES_GROUP, FEED_NAMESPACE } from '../../../functions/live-feed/settings.ts';
import { type AppSyncHandlers, loadAppSyncHandlers } from '../../../functions/local/appsync-runtime.ts';
import { CANARY_INSTANCE_ID } from '../../../functions/shared/contract/presence-contract.ts';
import { subscribeHandlerCode } from '../../../lib/appsync-code.ts';

const A = '3C01A2B3C4D5E6F7A8B9C0D1E2F3A4B5';
const B = '9F8E7D6C5B4A39281706F5E4D3C2B1A0';

type Handlers = AppSyncHandlers & { close(): void };
let cognito: Handlers;
let oidc: Handlers;

beforeAll(async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  cognito = await loadAppSyncHandlers(subscribeHandlerCode('cognito:groups'));
  oidc = await loadAppSyncHandlers(subscribeHandlerCode('https://helpdesk.example.com/groups'));
});
afterAll(() => {
  cognito?.close();
  oidc?.close();
});

/** A Cognito identity as AppSync gives it: groups on their own and in the claims. */
const cognitoCtx = (path: string, groups: string[] | null, namespace = FEED_NAMESPACE) => ({
  identity: {
    sub: 'agent-1',
    issuer: 'https://cognito-idp.sa-east-1.amazonaws.com/sa-east-1_X',
    username: 'agent-1',
    groups,
    claims: groups === null ? { sub: 'agent-1' } : { sub: 'agent-1', 'cognito:groups': groups },
    sourceIp: ['203.0.113.9'],
    defaultAuthStrategy: 'ALLOW',
  },
  info: {
    channel: { path, segments: path.split('/').filter(Boolean) },
    channelNamespace: { name: namespace },
    operation: 'SUBSCRIBE',
  },
});
const oidcCtx = (path: string, claim: unknown) => ({
  identity: {
    sub: 'agent-2',
    issuer: 'https://login.example.com',
    claims: { 'https://helpdesk.example.com/groups': claim },
  },
  info: { channel: { path }, channelNamespace: { name: FEED_NAMESPACE }, operation: 'SUBSCRIBE' },
});

const refused = { name: 'AppSyncHandlerError', errorType: 'Unauthorized' };

describe('onSubscribe (the shipped bundle)', () => {
  it('allows the instance the agent is a member of', async () => {
    await expect(cognito.subscribe(cognitoCtx(`/presence/${A}`, [A]))).resolves.toBeUndefined();
    await expect(cognito.subscribe(cognitoCtx(`/presence/${A}`, ['other', A]))).resolves.toBeUndefined();
  });

  it('allows every instance to the all-instances group', async () => {
    for (const instance of [A, B]) {
      await expect(
        cognito.subscribe(cognitoCtx(`/presence/${instance}`, [ALL_INSTANCES_GROUP])),
      ).resolves.toBeUndefined();
    }
  });

  it.each([
    ['another instance', `/presence/${B}`, [A]],
    ['a token with no groups', `/presence/${A}`, null],
    ['an empty group list', `/presence/${A}`, []],
    ['a wildcard on the namespace', '/presence/*', [ALL_INSTANCES_GROUP]],
    ['a wildcard everywhere', '/*', [ALL_INSTANCES_GROUP]],
    ['a partial wildcard', `/presence/${A.slice(0, 8)}*`, [ALL_INSTANCES_GROUP]],
    ['a deeper path', `/presence/${A}/chats`, [A]],
    ['the namespace alone', '/presence', [ALL_INSTANCES_GROUP]],
    ['an empty instance', '/presence/', [ALL_INSTANCES_GROUP]],
    ['the canary instance', `/presence/${CANARY_INSTANCE_ID}`, [ALL_INSTANCES_GROUP, CANARY_INSTANCE_ID]],
    ['an id Z-API never has', '/presence/a.b', [ALL_INSTANCES_GROUP, 'a.b']],
    ['a 65-character id', `/presence/${'A'.repeat(65)}`, [ALL_INSTANCES_GROUP]],
    ['a group that only starts like the instance', `/presence/${A}`, [`${A}x`, A.slice(0, 31)]],
    ['a group named like the all group, with case', `/presence/${A}`, ['ZAPI-PRESENCE-ALL']],
  ])('refuses %s', async (_what, path, groups) => {
    await expect(cognito.subscribe(cognitoCtx(path, groups))).rejects.toMatchObject(refused);
  });

  it('refuses another namespace, even with the all-instances group', async () => {
    await expect(
      cognito.subscribe(cognitoCtx(`/other/${A}`, [ALL_INSTANCES_GROUP], 'other')),
    ).rejects.toMatchObject(refused);
    // A path that names the feed under another namespace's handler is still not the feed's.
    await expect(cognito.subscribe(cognitoCtx(`/presence/${A}`, [A], 'other'))).rejects.toMatchObject(
      refused,
    );
  });

  it('reads an OIDC issuer’s groups from the configured claim, whatever its shape', async () => {
    for (const claim of [[A], `${A}`, `[${A} other]`, `["other","${A}"]`, `other,${A}`, `other ${A}`]) {
      await expect(
        oidc.subscribe(oidcCtx(`/presence/${A}`, claim)),
        JSON.stringify(claim),
      ).resolves.toBeUndefined();
    }
    for (const claim of [undefined, null, 7, {}, [B], `["${A}\\""]`, `[${B}]`, '']) {
      await expect(
        oidc.subscribe(oidcCtx(`/presence/${A}`, claim)),
        JSON.stringify(claim),
      ).rejects.toMatchObject(refused);
    }
  });

  it('with OIDC, reads only the configured claim (not cognito:groups, not identity.groups)', async () => {
    await expect(
      oidc.subscribe({
        identity: { claims: { 'cognito:groups': [A], groups: [A] }, groups: [A] },
        info: { channel: { path: `/presence/${A}` }, channelNamespace: { name: FEED_NAMESPACE } },
      }),
    ).rejects.toMatchObject(refused);
  });

  it('with Cognito, takes the groups AppSync lists on the identity when the claims hold none', async () => {
    await expect(
      cognito.subscribe({
        identity: { groups: [A], claims: {} },
        info: { channel: { path: `/presence/${A}` }, channelNamespace: { name: FEED_NAMESPACE } },
      }),
    ).resolves.toBeUndefined();
  });

  it('refuses a context without an identity or a channel', async () => {
    for (const ctx of [{}, { identity: null, info: null }, { identity: { groups: [A] } }]) {
      await expect(cognito.subscribe(ctx)).rejects.toMatchObject(refused);
    }
  });

  it('writes the configured claim into the bundle exactly once, and refuses a claim that is no name', () => {
    const code = subscribeHandlerCode('https://helpdesk.example.com/groups');
    expect(code).toContain('"https://helpdesk.example.com/groups"');
    expect(code).not.toContain('__ZAPI_PRESENCE_GROUPS_CLAIM__');
    expect(() => subscribeHandlerCode('groups"; util.unauthorized = 1; "')).toThrow(/is not a claim name/);
  });
});

/** What APPSYNC_JS does not run (docs: "Supported runtime features"; @aws-appsync/eslint-plugin). */
function unsupported(code: string): string[] {
  const found: string[] = [];
  const ast = parse(code, { ecmaVersion: 'latest', sourceType: 'module', locations: true });
  const declared = new Map<string, unknown>();
  const visit = (node: unknown, inFunction: string | undefined): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const child of node) visit(child, inFunction);
      return;
    }
    const n = node as { type?: string; [key: string]: unknown };
    const at = `line ${(n.loc as { start: { line: number } } | undefined)?.start.line}`;
    switch (n.type) {
      case 'TryStatement':
      case 'ThrowStatement':
      case 'WhileStatement':
      case 'DoWhileStatement':
      case 'ForStatement':
      case 'ContinueStatement':
      case 'LabeledStatement':
      case 'UpdateExpression':
      case 'ClassDeclaration':
      case 'ClassExpression':
      case 'ThisExpression':
      case 'AwaitExpression':
      case 'YieldExpression':
      case 'NewExpression':
        found.push(`${n.type} at ${at}`);
        break;
      case 'UnaryExpression':
        if (n.operator === '~') found.push(`~ at ${at}`);
        break;
      case 'BinaryExpression':
        if (n.operator === 'in' || n.operator === 'instanceof') found.push(`${n.operator} at ${at}`);
        break;
      case 'Literal':
        if ((n as { regex?: unknown }).regex !== undefined) found.push(`a regular expression at ${at}`);
        break;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        if (n.async || n.generator) found.push(`an async or generator function at ${at}`);
        break;
      case 'CallExpression': {
        const callee = n.callee as { type: string; name?: string };
        if (callee.type === 'Identifier' && callee.name === inFunction)
          found.push(`recursion (${inFunction}) at ${at}`);
        for (const argument of n.arguments as Array<{ type: string; name?: string }>) {
          if (
            argument.type === 'ArrowFunctionExpression' ||
            argument.type === 'FunctionExpression' ||
            (argument.type === 'Identifier' && declared.get(argument.name ?? '') === 'function')
          )
            found.push(`a function passed as an argument at ${at}`);
        }
        break;
      }
    }
    const name =
      n.type === 'FunctionDeclaration'
        ? ((n.id as { name?: string } | null)?.name ?? inFunction)
        : inFunction;
    for (const [key, value] of Object.entries(n)) if (key !== 'loc') visit(value, name);
  };
  for (const statement of ast.body) {
    if (statement.type === 'FunctionDeclaration' && statement.id) declared.set(statement.id.name, 'function');
  }
  visit(ast, undefined);
  return found;
}

describe('the onSubscribe bundle keeps to APPSYNC_JS', () => {
  it('holds nothing the runtime refuses, imports only @aws-appsync/utils, exports onSubscribe, and fits in 32 KB', () => {
    const code = subscribeHandlerCode('cognito:groups');
    expect(unsupported(code)).toEqual([]);
    expect([...code.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1])).toEqual([
      '@aws-appsync/utils',
    ]);
    expect(code).toMatch(/export \{\s*onSubscribe\s*\};?\s*$/);
    expect(code.length).toBeLessThanOrEqual(32_768);
  });

  it('the check finds what it looks for (it can fail)', () => {
    expect(unsupported('export function f(a) { try { a++; } catch (e) { throw e; } while (a) {} }')).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^TryStatement/),
        expect.stringMatching(/^UpdateExpression/),
        expect.stringMatching(/^ThrowStatement/),
        expect.stringMatching(/^WhileStatement/),
      ]),
    );
    expect(
      unsupported('const r = /a/; function g(x) { return g(x); } [1].map((x) => x); new Date();'),
    ).toEqual([
      expect.stringMatching(/regular expression/),
      expect.stringMatching(/recursion \(g\)/),
      expect.stringMatching(/function passed as an argument/),
      expect.stringMatching(/^NewExpression/),
    ]);
  });
});
