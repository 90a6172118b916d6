#!/usr/bin/env node
/** `npm run schema`: writes the generated event schemas to docs/ (a test fails when they are stale). */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  derivedDetailJsonSchema,
  presenceDetailJsonSchema,
  presenceEventOpenApi,
  SCHEMA_FILES,
  schemaText,
} from '../lib/presence-schema.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
writeFileSync(`${root}${SCHEMA_FILES.detailJsonSchema}`, schemaText(presenceDetailJsonSchema()));
writeFileSync(`${root}${SCHEMA_FILES.eventOpenApi}`, schemaText(presenceEventOpenApi()));
writeFileSync(`${root}${SCHEMA_FILES.derivedJsonSchema}`, schemaText(derivedDetailJsonSchema()));
console.log(`wrote ${SCHEMA_FILES.detailJsonSchema} and ${SCHEMA_FILES.eventOpenApi}`);
