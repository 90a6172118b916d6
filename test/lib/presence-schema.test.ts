import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  CALLBACK_TYPE,
  PRESENCE_STATUSES,
  PresenceDetailSchema,
  stampedDetail,
} from '../../functions/shared/contract/presence-contract.ts';
import {
  derivedDetailJsonSchema,
  presenceDetailJsonSchema,
  presenceEventOpenApi,
  REGISTRY_SCHEMA_NAME,
  SCHEMA_FILES,
  schemaText,
} from '../../lib/presence-schema.ts';
import groupPresence from '../fixtures/group-presence.json' with { type: 'json' };
import docsExamples from '../fixtures/zapi-docs-examples.json' with { type: 'json' };
import { synth } from '../support/synth.ts';

const read = (file: string) => readFileSync(fileURLToPath(new URL(`../../${file}`, import.meta.url)), 'utf8');

describe('published schema', () => {
  it.each(Object.entries(SCHEMA_FILES))(
    'docs/ holds the current %s (run `npm run schema` if this fails)',
    (key, file) => {
      const generated =
        key === 'detailJsonSchema'
          ? presenceDetailJsonSchema()
          : key === 'derivedJsonSchema'
            ? derivedDetailJsonSchema()
            : presenceEventOpenApi();
      expect(read(file)).toBe(schemaText(generated));
    },
  );

  it('registers exactly the committed OpenAPI document in an EventBridge Schema Registry', () => {
    const { template } = synth({ instanceId: 'TEST' });
    template.resourceCountIs('AWS::EventSchemas::Registry', 1);
    const schemas = Object.values(template.findResources('AWS::EventSchemas::Schema')) as Array<{
      Properties: Record<string, unknown>;
    }>;
    expect(schemas).toHaveLength(1);
    expect(schemas[0]?.Properties).toMatchObject({ SchemaName: REGISTRY_SCHEMA_NAME, Type: 'OpenApi3' });
    expect(schemas[0]?.Properties.Content).toBe(read(SCHEMA_FILES.eventOpenApi));
  });

  it("describes what is published: the validated callback and the receiver's receivedAt", () => {
    const schema = presenceDetailJsonSchema() as {
      required: string[];
      properties: Record<string, { enum?: string[] }>;
    };
    expect(schema.required.sort()).toEqual(['instanceId', 'phone', 'receivedAt', 'status', 'type']);
    expect(schema.properties.status?.enum).toEqual([...PRESENCE_STATUSES]);
  });

  it('accepts exactly what the valibot detail schema accepts (property, checked with Ajv)', () => {
    const validate = new Ajv({ strict: false }).compile(presenceDetailJsonSchema());
    for (const example of [...Object.values(docsExamples), groupPresence]) {
      expect(validate(stampedDetail(example as never, 1_764_072_000_000))).toBe(true);
      // What Z-API sends is not yet a detail: the receiver stamps it.
      expect(validate(example)).toBe(false);
    }
    const field = fc.oneof(
      fc.constant(undefined),
      fc.constant(null),
      fc.string(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constantFrom(CALLBACK_TYPE, ...PRESENCE_STATUSES, ''),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            type: field,
            phone: field,
            status: field,
            lastSeen: field,
            instanceId: field,
            receivedAt: field,
            extra: field,
          },
          { requiredKeys: [] },
        ),
        (body) => {
          const json = JSON.parse(JSON.stringify(body)) as unknown;
          expect(validate(json)).toBe(v.safeParse(PresenceDetailSchema, json).success);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('can be turned off', () => {
    const { template } = synth({ instanceId: 'TEST', schemaRegistry: 'false' });
    template.resourceCountIs('AWS::EventSchemas::Schema', 0);
  });
});
