/**
 * The published schema of presence events, generated from the contract's valibot schema so the
 * registry, docs/ and the validator can never disagree.
 *
 * - `presenceDetailJsonSchema()`: JSON Schema (draft-07) of `detail`, for any JSON Schema validator.
 * - `presenceEventOpenApi()`: the whole event as OpenAPI 3 (the format EventBridge Schema Registry uses
 *   for code bindings), with `detail` generated from the same valibot schema.
 */
import { toJsonSchema } from '@valibot/to-json-schema';
import { CfnRegistry, CfnSchema } from 'aws-cdk-lib/aws-eventschemas';
import { Construct } from 'constructs';
import {
  CALLBACK_TYPE,
  DERIVED_DETAIL_TYPES,
  DERIVED_EVENT_SOURCE,
  DETAIL_TYPE_PREFIX,
  DETAIL_TYPES,
  type DerivedDetailType,
  EVENT_SOURCE,
  PRESENCE_STATUSES,
  PresenceDetailSchema,
} from '../functions/shared/contract/presence-contract.ts';
import { DERIVED_DETAIL_SCHEMAS } from '../functions/shared/contract/presence-derived-schemas.ts';

/** Files under docs/ holding the generated schemas (kept fresh by a test; `npm run schema` writes them). */
export const SCHEMA_FILES = {
  detailJsonSchema: 'docs/presence-detail.schema.json',
  eventOpenApi: 'docs/presence-event.openapi.json',
  derivedJsonSchema: 'docs/presence-derived.schema.json',
} as const;

/** Registry schema name, as EventBridge names discovered schemas: `source@Type`. */
export const REGISTRY_SCHEMA_NAME = `${EVENT_SOURCE}@${CALLBACK_TYPE}`;

/** Every JSON number is finite (JSON has no Infinity), so the receiver's `finite` check adds nothing here. */
const IGNORED_ACTIONS = ['finite'];

export function presenceDetailJsonSchema(): Record<string, unknown> {
  return {
    title: CALLBACK_TYPE,
    description:
      'detail of a Z-API chat-presence event on EventBridge: the validated callback, and receivedAt (set by the receiver).',
    ...toJsonSchema(PresenceDetailSchema, { target: 'draft-07', ignoreActions: IGNORED_ACTIONS }),
  };
}

export function presenceEventOpenApi(): Record<string, unknown> {
  const detail = toJsonSchema(PresenceDetailSchema, {
    target: 'openapi-3.0',
    ignoreActions: IGNORED_ACTIONS,
  }) as Record<string, unknown>;
  return {
    openapi: '3.0.0',
    info: { version: '1.0.0', title: 'ZapiChatPresence' },
    paths: {},
    components: {
      schemas: {
        AWSEvent: {
          type: 'object',
          required: [
            'detail-type',
            'resources',
            'detail',
            'id',
            'source',
            'time',
            'region',
            'version',
            'account',
          ],
          'x-amazon-events-detail-type': `${DETAIL_TYPE_PREFIX}*`,
          'x-amazon-events-source': EVENT_SOURCE,
          properties: {
            detail: { $ref: `#/components/schemas/${CALLBACK_TYPE}` },
            account: { type: 'string' },
            'detail-type': { type: 'string', enum: PRESENCE_STATUSES.map((status) => DETAIL_TYPES[status]) },
            id: { type: 'string' },
            region: { type: 'string' },
            resources: { type: 'array', items: { type: 'string' } },
            source: { type: 'string', enum: [EVENT_SOURCE] },
            time: { type: 'string', format: 'date-time' },
            version: { type: 'string' },
          },
        },
        [CALLBACK_TYPE]: { ...detail, additionalProperties: true },
      },
    },
  };
}

/** `DerivedActivityStarted`-style names for the derived detail-types. */
function derivedName(detailType: string): string {
  return detailType.replace(/^Z-API Chat /, 'ZapiChat').replace(/\s+/g, '');
}

/** JSON Schema (draft-07) of every derived event's `detail`, one definition per detail-type. */
export function derivedDetailJsonSchema(): Record<string, unknown> {
  return {
    title: 'Z-API chat presence: derived events',
    description: `detail of the events with source ${DERIVED_EVENT_SOURCE}, by detail-type (the presence store).`,
    definitions: Object.fromEntries(
      Object.entries(DERIVED_DETAIL_SCHEMAS).map(([detailType, schema]) => [
        detailType,
        toJsonSchema(schema, { target: 'draft-07' }),
      ]),
    ),
  };
}

/** The OpenAPI document of one derived event (the format of EventBridge Schema Registry). */
export function derivedEventOpenApi(detailType: DerivedDetailType): Record<string, unknown> {
  const name = derivedName(detailType);
  return {
    openapi: '3.0.0',
    info: { version: '1.0.0', title: name },
    paths: {},
    components: {
      schemas: {
        AWSEvent: {
          type: 'object',
          required: [
            'detail-type',
            'resources',
            'detail',
            'id',
            'source',
            'time',
            'region',
            'version',
            'account',
          ],
          'x-amazon-events-detail-type': detailType,
          'x-amazon-events-source': DERIVED_EVENT_SOURCE,
          properties: {
            detail: { $ref: `#/components/schemas/${name}` },
            account: { type: 'string' },
            'detail-type': { type: 'string', enum: [detailType] },
            id: { type: 'string' },
            region: { type: 'string' },
            resources: { type: 'array', items: { type: 'string' } },
            source: { type: 'string', enum: [DERIVED_EVENT_SOURCE] },
            time: { type: 'string', format: 'date-time' },
            version: { type: 'string' },
          },
        },
        [name]: toJsonSchema(DERIVED_DETAIL_SCHEMAS[detailType], { target: 'openapi-3.0' }),
      },
    },
  };
}

/** The exact text written to docs/ and registered: stable key order, two-space indent, final newline. */
export function schemaText(schema: Record<string, unknown>): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}

export interface PresenceSchemaRegistryProps {
  /** @default - generated */
  readonly registryName?: string;
  /** Also register the derived events' schemas (the presence store is on). @default false */
  readonly derivedEvents?: boolean;
}

/** An EventBridge Schema Registry holding the presence event schema (download code bindings from it). */
export class PresenceSchemaRegistry extends Construct {
  readonly registry: CfnRegistry;
  readonly schema: CfnSchema;
  /** With `derivedEvents`: one per derived detail-type. */
  readonly derivedSchemas: readonly CfnSchema[];

  constructor(scope: Construct, id: string, props: PresenceSchemaRegistryProps = {}) {
    super(scope, id);
    this.registry = new CfnRegistry(this, 'Registry', {
      description: 'Z-API chat-presence event schemas',
      ...(props.registryName !== undefined && { registryName: props.registryName }),
    });
    this.schema = new CfnSchema(this, 'Schema', {
      registryName: this.registry.attrRegistryName,
      schemaName: REGISTRY_SCHEMA_NAME,
      type: 'OpenApi3',
      description: 'Z-API chat-presence event (one detail-type per status)',
      content: schemaText(presenceEventOpenApi()),
    });
    this.derivedSchemas = props.derivedEvents
      ? (Object.values(DERIVED_DETAIL_TYPES) as DerivedDetailType[]).map(
          (detailType) =>
            new CfnSchema(this, derivedName(detailType), {
              registryName: this.registry.attrRegistryName,
              schemaName: `${DERIVED_EVENT_SOURCE}@${derivedName(detailType)}`,
              type: 'OpenApi3',
              description: `Z-API chat presence, derived: ${detailType}`,
              content: schemaText(derivedEventOpenApi(detailType)),
            }),
        )
      : [];
  }
}
