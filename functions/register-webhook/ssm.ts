/** Reads SecureString parameters for registration, turning SDK errors into messages an operator can act on. */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { RegistrationError } from './registration.ts';

export function parameterReader(ssm: Pick<SSMClient, 'send'>): (name: string) => Promise<string> {
  return async (name) => {
    try {
      const { Parameter } = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      if (!Parameter?.Value) throw new RegistrationError(`SSM parameter ${name} is empty`);
      return Parameter.Value;
    } catch (error) {
      if (error instanceof RegistrationError) throw error;
      const kind = error instanceof Error ? error.name : 'UnknownError';
      if (kind === 'ParameterNotFound') {
        throw new RegistrationError(
          `SSM parameter ${name} does not exist; create it: aws ssm put-parameter --type SecureString --name ${name} --value ...`,
        );
      }
      if (kind === 'AccessDeniedException' || kind.startsWith('KMS') || kind === 'InvalidKeyId') {
        throw new RegistrationError(
          `SSM parameter ${name} cannot be read (${kind}); if it is encrypted with a customer-managed KMS key, allow this function's role kms:Decrypt on it`,
        );
      }
      throw new RegistrationError(`SSM parameter ${name} could not be read (${kind}); retry the deployment`);
    }
  };
}
