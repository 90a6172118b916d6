/**
 * EventBridge's documented cross-account rules, checked on synthesized templates of several accounts
 * (the apps of a cross-account subscription, each as its account deploys it):
 *
 * 1. A rule names a bus of another account by its full ARN: a bare name means the rule's own account's
 *    bus of that name (PutRule and PutTargets take "the name or ARN of the event bus").
 * 2. A rule that an account creates on another account's bus may target only an event bus; targets of
 *    any other kind in another account can be added only by the bus owner.
 * 3. A target that is not an event bus is in the account of the rule that delivers to it.
 * 4. Bus-to-bus delivery to another account goes through a role of the rule's account, which EventBridge
 *    assumes (trust: events.amazonaws.com) and which may PutEvents to exactly that bus.
 * 5. The receiving bus's policy lets the sending account PutEvents to it (and, where it names the rules
 *    it accepts with aws:SourceArn, this rule is one of them).
 *
 * Sources: EventBridge User Guide, "Sending and receiving events between AWS accounts", "Permissions for
 * event buses", "Example policy: Send events from a specific rule", and the PutTargets API reference.
 */

// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation template is plain JSON
type Json = any;

export interface AccountTemplate {
  /** A name for messages (the stack). */
  readonly name: string;
  readonly account: string;
  readonly region: string;
  readonly template: { Resources: Record<string, { Type: string; Properties?: Json }> };
}

const BUS_ARN = /^arn:aws[a-z-]*:events:([a-z0-9-]+):(\d{12}):event-bus\/(.+)$/;
const ANY_ARN = /^arn:aws[a-z-]*:([a-z0-9-]+):([a-z0-9-]*):(\d{12})?:(.*)$/;

interface BusRef {
  readonly account: string;
  readonly region: string;
  readonly name: string;
  /** How the rule named it: a reference to a bus of its template, a full ARN, or a bare name. */
  readonly how: 'ref' | 'arn' | 'name' | 'default';
}

/** A string for a template value, resolving the pseudo parameters and this template's buses. */
function resolve(value: Json, at: AccountTemplate): string | undefined {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object') return undefined;
  const resources = at.template.Resources;
  if ('Ref' in value) {
    const ref = value.Ref as string;
    if (ref === 'AWS::Partition') return 'aws';
    if (ref === 'AWS::Region') return at.region;
    if (ref === 'AWS::AccountId') return at.account;
    if (ref === 'AWS::URLSuffix') return 'amazonaws.com';
    const resource = resources[ref];
    if (resource?.Type === 'AWS::Events::EventBus') return resource.Properties?.Name ?? `(generated ${ref})`;
    return undefined;
  }
  if ('Fn::GetAtt' in value) {
    const [id, attribute] = value['Fn::GetAtt'] as [string, string];
    const resource = resources[id];
    if (resource?.Type === 'AWS::Events::EventBus') {
      const name = resource.Properties?.Name ?? `(generated ${id})`;
      if (attribute === 'Name') return name;
      if (attribute === 'Arn') return `arn:aws:events:${at.region}:${at.account}:event-bus/${name}`;
    }
    return undefined;
  }
  if ('Fn::Join' in value) {
    const [separator, parts] = value['Fn::Join'] as [string, Json[]];
    const resolved = parts.map((part) => resolve(part, at));
    return resolved.every((part) => part !== undefined) ? resolved.join(separator) : undefined;
  }
  return undefined;
}

function busOf(rule: Json, at: AccountTemplate): BusRef {
  const name = rule.Properties?.EventBusName;
  if (name === undefined) return { account: at.account, region: at.region, name: 'default', how: 'default' };
  const resolved = resolve(name, at) ?? '(unresolved)';
  const arn = BUS_ARN.exec(resolved);
  if (arn !== null && typeof name !== 'object') {
    return { region: arn[1] as string, account: arn[2] as string, name: arn[3] as string, how: 'arn' };
  }
  if (arn !== null)
    return { region: arn[1] as string, account: arn[2] as string, name: arn[3] as string, how: 'ref' };
  return {
    account: at.account,
    region: at.region,
    name: resolved,
    how: typeof name === 'object' ? 'ref' : 'name',
  };
}

interface TargetRef {
  readonly account: string | undefined;
  readonly isBus: boolean;
  readonly arn: string | undefined;
  readonly kind: string;
}

function targetOf(target: Json, at: AccountTemplate): TargetRef {
  const arnValue = target.Arn;
  if (arnValue && typeof arnValue === 'object' && 'Fn::GetAtt' in arnValue) {
    const [id] = arnValue['Fn::GetAtt'] as [string];
    const type = at.template.Resources[id]?.Type ?? 'unknown';
    return {
      account: at.account,
      isBus: type === 'AWS::Events::EventBus',
      arn: resolve(arnValue, at),
      kind: type,
    };
  }
  const arn = resolve(arnValue, at);
  const parsed = arn === undefined ? null : ANY_ARN.exec(arn);
  if (parsed === null) return { account: undefined, isBus: false, arn, kind: 'unknown' };
  const isBus = parsed[1] === 'events' && (parsed[4] ?? '').startsWith('event-bus/');
  return { account: parsed[3] || at.account, isBus, arn, kind: isBus ? 'event bus' : (parsed[1] as string) };
}

/** Statements of the policies attached to a role of this template (inline or AWS::IAM::Policy). */
function roleStatements(roleId: string, at: AccountTemplate): Json[] {
  const resources = at.template.Resources;
  const inline = (resources[roleId]?.Properties?.Policies ?? []).flatMap(
    (p: Json) => p.PolicyDocument?.Statement ?? [],
  );
  const attached = Object.values(resources)
    .filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' &&
        (r.Properties?.Roles ?? []).some((role: Json) => role?.Ref === roleId),
    )
    .flatMap((r) => r.Properties?.PolicyDocument?.Statement ?? []);
  return [...inline, ...attached];
}

const list = (value: Json): Json[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/** A glob (`*`, `?`) as IAM's ArnLike reads it. */
function globMatches(pattern: string, text: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return regex.test(text);
}

/** Every way these accounts' templates break EventBridge's documented cross-account rules. */
export function crossAccountProblems(accounts: readonly AccountTemplate[]): string[] {
  const problems: string[] = [];
  const busesCreated = accounts.flatMap((at) =>
    Object.entries(at.template.Resources)
      .filter(([, r]) => r.Type === 'AWS::Events::EventBus')
      .map(([id, r]) => ({
        at,
        id,
        name: (r.Properties?.Name as string | undefined) ?? `(generated ${id})`,
      })),
  );
  for (const at of accounts) {
    for (const [ruleId, rule] of Object.entries(at.template.Resources)) {
      if (rule.Type !== 'AWS::Events::Rule') continue;
      const where = `${at.name} (${at.account}) rule ${ruleId}`;
      const bus = busOf(rule, at);
      // 1. A bare name is this account's bus.
      if (bus.how === 'name' && !busesCreated.some((b) => b.at === at && b.name === bus.name)) {
        const elsewhere = busesCreated.find((b) => b.at.account !== at.account && b.name === bus.name);
        if (elsewhere !== undefined)
          problems.push(
            `${where}: names the bus "${bus.name}" without its ARN, which in account ${at.account} means its own bus of that name; the bus is account ${elsewhere.at.account}'s: name it arn:aws:events:${elsewhere.at.region}:${elsewhere.at.account}:event-bus/${bus.name}`,
          );
      }
      const ruleAccount = bus.account;
      const createdByOwner = ruleAccount === at.account;
      for (const target of list(rule.Properties?.Targets)) {
        const t = targetOf(target, at);
        const label = `${where} target ${target.Id} (${t.kind}${t.arn ? ` ${t.arn}` : ''})`;
        // 2. On another account's bus: event buses only.
        if (!createdByOwner && !t.isBus)
          problems.push(
            `${label}: the rule is on account ${ruleAccount}'s bus, created by account ${at.account}; EventBridge lets such a rule target only an event bus (other targets are the bus owner's to add)`,
          );
        // 3. Other targets stay in the rule's account.
        else if (!t.isBus && t.account !== undefined && t.account !== ruleAccount)
          problems.push(
            `${label}: is in account ${t.account}, not in the rule's account ${ruleAccount}; deliver to a bus of that account and subscribe there`,
          );
        if (!t.isBus || t.account === undefined || t.account === ruleAccount) continue;
        // 4. Bus-to-bus across accounts: a role of the rule's account, PutEvents to exactly that bus.
        const roleId = target.RoleArn?.['Fn::GetAtt']?.[0] as string | undefined;
        const role = roleId === undefined ? undefined : at.template.Resources[roleId];
        if (role?.Type !== 'AWS::IAM::Role') {
          problems.push(`${label}: a bus in another account needs a role (RoleArn) of the rule's account`);
        } else {
          const trusts = list(role.Properties?.AssumeRolePolicyDocument?.Statement).some(
            (s: Json) =>
              s.Effect === 'Allow' &&
              list(s.Action).includes('sts:AssumeRole') &&
              list(s.Principal?.Service).includes('events.amazonaws.com'),
          );
          if (!trusts) problems.push(`${label}: its role ${roleId} is not one EventBridge may assume`);
          const puts = roleStatements(roleId as string, at).some(
            (s: Json) =>
              s.Effect === 'Allow' &&
              list(s.Action).includes('events:PutEvents') &&
              list(s.Resource).some((r: Json) => resolve(r, at) === t.arn),
          );
          if (!puts) problems.push(`${label}: its role ${roleId} may not PutEvents to ${t.arn}`);
        }
        // 5. The receiving bus lets this account put events.
        const receiver = accounts.find((a) => a.account === t.account);
        const targetName = t.arn === undefined ? undefined : BUS_ARN.exec(t.arn)?.[3];
        if (receiver === undefined) {
          problems.push(`${label}: no template of account ${t.account} to check its bus policy`);
          continue;
        }
        const receiving = Object.entries(receiver.template.Resources).find(
          ([, r]) => r.Type === 'AWS::Events::EventBus' && r.Properties?.Name === targetName,
        );
        if (receiving === undefined) {
          problems.push(`${label}: account ${t.account}'s template creates no bus named "${targetName}"`);
          continue;
        }
        const ruleArn = `arn:aws:events:${bus.region}:${ruleAccount}:rule/${bus.name}/SomeRuleName-A1B2C3`;
        const allowed = Object.values(receiver.template.Resources)
          .filter(
            (r) =>
              r.Type === 'AWS::Events::EventBusPolicy' &&
              resolve(r.Properties?.EventBusName, receiver) === targetName,
          )
          .flatMap((r) => list(r.Properties?.Statement))
          .some((s: Json) => {
            const principals = list(s.Principal?.AWS).map((p: Json) => resolve(p, receiver) ?? '');
            const arnLike =
              s.Condition?.ArnLike?.['aws:SourceArn'] ?? s.Condition?.ArnEquals?.['aws:SourceArn'];
            return (
              s.Effect === 'Allow' &&
              principals.some((p) => p === at.account || p === `arn:aws:iam::${at.account}:root`) &&
              list(s.Action).includes('events:PutEvents') &&
              list(s.Resource).some((r: Json) => resolve(r, receiver) === t.arn) &&
              (arnLike === undefined ||
                list(arnLike).some((pattern: Json) => globMatches(resolve(pattern, receiver) ?? '', ruleArn)))
            );
          });
        if (!allowed)
          problems.push(
            `${label}: the bus policy of account ${t.account}'s bus "${targetName}" does not let account ${at.account}'s rules on "${bus.name}" PutEvents to it`,
          );
      }
    }
  }
  return problems;
}
