/**
 * The fleet against what an adversarial review found: tokens that would change Z-API's URL path, and
 * Z-API answers that carry secrets in fields that are shown (another URL's host, the payment status).
 */
import { describe, expect, it } from 'vitest';
import { type FleetDeps, type FleetSettings, runFleet } from '../../../functions/fleet/reconcile.ts';
import { countOutcomes, logOutcomes } from '../../../functions/fleet/report.ts';
import { hostOf, ZapiClient } from '../../../functions/fleet/zapi.ts';
import { deadlineAt } from '../../../functions/shared/aws/deadline.ts';
import { deriveInstanceSecret } from '../../../functions/shared/secrets/webhook-secret.ts';
import { useZapiStandIn } from '../../support/use-zapi-standin.ts';

const BASE = 'https://hard123.execute-api.sa-east-1.amazonaws.com';
const MASTER = 'hardening-master-0123456789abcdefghijkl';
const CLIENT_TOKEN = 'F1a2B3c4D5e6F7a8B9c0D1e2F3a4B5c6d';
const SETTINGS: FleetSettings = {
  webhookBaseUrl: BASE,
  driftPolicy: 'repair',
  concurrency: 4,
  dueWarningMs: 7 * 86_400_000,
  currentPaymentStatuses: ['PAID'],
};

const zapi = useZapiStandIn();

function deps(tokens: Record<string, string>): FleetDeps {
  return {
    listInstanceIds: async function* () {
      yield Object.keys(tokens);
    },
    readTokens: async (ids) => new Map(ids.flatMap((id) => (tokens[id] ? [[id, tokens[id]] as const] : []))),
    readToken: async (id) => tokens[id],
    readClientToken: async () => CLIENT_TOKEN,
    readMaster: async () => MASTER,
    zapi: (credentials) =>
      new ZapiClient(credentials, { baseUrl: zapi.url, attemptTimeoutMs: 500, maxAttempts: 1 }),
    tokenParameterName: (id) => `/zapi/${id}/token`,
  };
}

describe('fleet hardening', () => {
  it.each(['..', '.', 'a/b', 'tok en', 'tok?x', 'tok#x'])(
    'never sends a token like %j to Z-API (it would change the request path)',
    async (token) => {
      zapi.add('ODD1', token);
      const report = await runFleet(
        { mode: 'reconcile', trigger: 'sweep' },
        SETTINGS,
        deps({ ODD1: token }),
        deadlineAt(Date.now() + 10_000),
      );
      expect(report.outcomes[0]).toMatchObject({ action: 'failed', error: { code: 'invalid-token' } });
      expect(report.outcomes[0]?.error?.message).toContain('/zapi/ODD1/token');
      expect(zapi.requests).toEqual([]);
    },
  );

  it('shows no secret that Z-API puts in the payment status or in another URL’s host, in any case', async () => {
    const token = 'A0b1C2d3E4f5A6b7C8d9E0f1';
    const secret = deriveInstanceSecret(MASTER, 'LEAK1');
    zapi.add('LEAK1', token, {
      paymentStatus: CLIENT_TOKEN,
      presenceUrl: `https://${token.toLowerCase()}.crm.example.com/hook`,
    });
    zapi.add('LEAK2', 'B0b1C2d3E4f5A6b7C8d9E0f2', { paymentStatus: secret.slice(0, 40) });
    const lines: string[] = [];
    const sink = {
      info: (r: object) => lines.push(JSON.stringify(r)),
      warn: (r: object) => lines.push(JSON.stringify(r)),
      error: (r: object) => lines.push(JSON.stringify(r)),
    };
    const report = await runFleet(
      { mode: 'reconcile', trigger: 'sweep' },
      { ...SETTINGS, driftPolicy: 'alert' },
      deps({ LEAK1: token, LEAK2: 'B0b1C2d3E4f5A6b7C8d9E0f2' }),
      deadlineAt(Date.now() + 10_000),
    );
    logOutcomes(report, sink);
    const shown = `${JSON.stringify(report)}\n${lines.join('\n')}`;
    for (const value of [token, token.toLowerCase(), CLIENT_TOKEN, secret, secret.slice(0, 40), MASTER]) {
      expect(shown).not.toContain(value);
    }
    expect(countOutcomes(report.outcomes).paymentIssues).toBe(2);
    expect(report.outcomes.find((o) => o.instanceId === 'LEAK1')?.foundHost).toBe('***.crm.example.com');
  });

  it('masks any host label long enough to be a key', () => {
    expect(hostOf('https://0123456789abcdef.hooks.example.com:8443/x?y=z')).toBe(
      '***.hooks.example.com:8443',
    );
    expect(hostOf('https://crm.example.com/x')).toBe('crm.example.com');
  });
});
