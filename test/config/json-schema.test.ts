import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { configJsonSchemaText, SCHEMA_ID } from '../../gateway/config/json-schema.js';

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
      'node', 'listeners', 'admin', 'sharedState', 'log', 'drainTimeoutMs', 'clusters', 'plugins', 'services', 'routes',
    ]);
    expect(schema.properties.admin.default).toEqual({ address: '127.0.0.1', port: 9901 });
    expect(schema.properties.node.default).toEqual({ id: 'edge-1', cluster: 'edge' });
    expect(schema.properties.drainTimeoutMs.default).toBe(10000);
    expect(schema.properties.routes.description).toBe('First match wins; no match answers 404');
  });

  it('uses only standard JSON Schema keywords (no zod-specific formats editors would flag)', () => {
    expect(configJsonSchemaText()).not.toContain('"format"');
  });

  it('ends with a newline and is indented by two spaces', () => {
    const text = configJsonSchemaText();
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')[1]).toBe('  "$schema": "https://json-schema.org/draft/2020-12/schema",');
  });
});
