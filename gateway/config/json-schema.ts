/**
 * The JSON Schema of the configuration file, for editor completion and checks
 * (`# yaml-language-server: $schema=./gateway.schema.json`). It is generated from the zod schema,
 * never edited by hand: `npx tsx gateway/cli.ts schema > config/gateway.schema.json` rewrites
 * config/gateway.schema.json, and test/config/json-schema.test.ts fails when the file is stale.
 */
import { configJsonSchema } from './schema.js';

export const SCHEMA_ID = 'urn:edge-gateway:config:gateway.schema.json';

/** The text of config/gateway.schema.json: two-space JSON with a final newline. */
export function configJsonSchemaText(): string {
  const { $schema, ...rest } = configJsonSchema();
  const schema = {
    $schema,
    $id: SCHEMA_ID,
    title: 'edge-gateway configuration',
    description: 'One YAML or JSON file with camelCase keys: node, listeners, admin, sharedState, log, workers, drainTimeoutMs, '
      + 'clusters, plugins, services, routes. Check it with `edge-gateway validate --config FILE`.',
    ...rest,
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
