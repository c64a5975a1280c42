import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { configJsonSchemaText, SCHEMA_ID } from '../../gateway/config/json-schema.js';
import { DRAFT, type Json, nonStandard } from '../helpers/json-schema-vocabulary.js';

const FILE = 'config/gateway.schema.json';

describe('the JSON Schema of the configuration file', () => {
  it('is exactly what the generator produces, so config/gateway.schema.json cannot go stale', () => {
    const onDisk = readFileSync(FILE, 'utf8');
    expect(onDisk, `${FILE} is stale: regenerate it with \`npx tsx gateway/cli.ts schema > ${FILE}\``)
      .toBe(configJsonSchemaText());
  });

  it('names itself and describes the document, with the contract defaults for editors', () => {
    const schema = JSON.parse(configJsonSchemaText()) as {
      $schema: string; $id: string; title: string; required: string[]; additionalProperties: boolean;
      properties: Record<string, { default?: unknown; description?: string }>;
    };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toBe(SCHEMA_ID);
    expect(schema.title).toBe('edge-gateway configuration');
    expect(schema.required).toEqual(['listeners']);
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual([
      'node', 'listeners', 'admin', 'modules', 'sharedState', 'log', 'workers', 'drainDelayMs', 'drainTimeoutMs', 'clusters', 'functions', 'plugins', 'services', 'routes',
    ]);
    expect(schema.properties.admin.default).toEqual({ address: '127.0.0.1', port: 9901, tokenEnv: 'EDGE_GATEWAY_ADMIN_TOKEN' });
    expect(schema.properties.node.default).toEqual({ id: 'edge-1', cluster: 'edge' });
    expect(schema.properties.drainTimeoutMs.default).toBe(10000);
    expect(schema.properties.drainDelayMs.default).toBe(0);
    expect(schema.properties.routes.description).toBe('First match wins; no match answers 404');
  });

  it('uses only keywords of the draft it names, each with a value of the kind the draft defines', () => {
    const schema = JSON.parse(configJsonSchemaText()) as Json;
    expect(nonStandard(schema)).toEqual([]);
  });

  it('is walked by a check that refuses foreign keywords, wrong value kinds, unknown formats and bad patterns', () => {
    expect(nonStandard({
      $schema: DRAFT,
      type: 'object',
      nullable: true,
      properties: {
        // Property names are not keywords; their schemas are walked.
        format: { type: 'string', format: 'cuid', 'x-editor': 1 },
        exclusive: { type: 'number', exclusiveMinimum: true },
        port: { type: 'int', minimum: 0, maxLength: -1 },
        path: { type: 'string', pattern: '(' },
        ref: { $ref: '#/$defs/missing' },
        ok: { type: ['string', 'null'], default: { type: 'anything', nullable: 1 } },
      },
      required: ['ok', 'ok'],
      anyOf: [true, { $schema: DRAFT }],
    })).toEqual([
      '/nullable: not a keyword of JSON Schema 2020-12',
      '/properties/format/format: "cuid" is not a format of JSON Schema 2020-12',
      '/properties/format/x-editor: not a keyword of JSON Schema 2020-12',
      '/properties/exclusive/exclusiveMinimum: must be a number',
      '/properties/port/type: "int" is not a JSON Schema type',
      '/properties/port/maxLength: must be a non-negative integer',
      '/properties/path/pattern: not an ECMA-262 regular expression (Invalid regular expression: /(/u: Unterminated group)',
      '/required: must be an array of unique strings',
      '/anyOf/1/$schema: only the root schema may name the draft',
      '/properties/ref/$ref: "#/$defs/missing" does not resolve in the document',
    ]);
  });

  it('ends with a newline and is indented by two spaces', () => {
    const text = configJsonSchemaText();
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')[1]).toBe('  "$schema": "https://json-schema.org/draft/2020-12/schema",');
  });
});
