/**
 * Scoped acknowledgements of policy-validation findings (cdk-nag reports them; CDK's Validations API
 * records the acknowledgement, so the library needs no cdk-nag at run time).
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges one finding of a rule on one construct: `finding` may hold tokens (an ARN built with
 * formatArn, say); it is written the way cdk-nag reports it (`<AWS::Partition>`, `<Resource.Arn>`).
 */
export function acknowledgeFinding(scope: IConstruct, rule: string, finding: string, reason: string): void {
  const resolved = Stack.of(scope).resolve(finding) as unknown;
  Validations.of(scope).acknowledge({ id: `${rule}[${nagText(resolved)}]`, reason });
}

function nagText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(nagText).join('');
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    if (typeof node.Ref === 'string') return `<${node.Ref}>`;
    const getAtt = node['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${getAtt.join('.')}>`;
    const join = node['Fn::Join'];
    if (Array.isArray(join)) return (join[1] as unknown[]).map(nagText).join(String(join[0]));
  }
  return JSON.stringify(value);
}
