/**
 * The vocabulary of JSON Schema draft 2020-12, written out from the specification (Core §8 and
 * §10–11, Validation §6–9), and a walk that checks a whole schema against it: every keyword is one
 * of the draft's, every value has the kind the draft defines for it, subschemas are walked wherever
 * the draft puts them (and nowhere else: `default`, `const`, `enum` and `examples` hold data, and
 * the keys of `properties` are names, not keywords).
 */

export const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** What a keyword's value is. */
type Kind =
  | 'schema' | 'schemas' | 'schemaMap' | 'patternSchemaMap'
  | 'string' | 'uri' | 'ref' | 'anchor' | 'pattern' | 'format'
  | 'any' | 'array' | 'nonNegativeInteger' | 'number' | 'positiveNumber' | 'boolean'
  | 'type' | 'uniqueStrings' | 'stringArrays' | 'booleanMap';

const KEYWORDS: Readonly<Record<string, Kind>> = {
  // Core (§8)
  $schema: 'uri', $id: 'uri', $ref: 'ref', $dynamicRef: 'ref', $anchor: 'anchor', $dynamicAnchor: 'anchor',
  $vocabulary: 'booleanMap', $comment: 'string', $defs: 'schemaMap',
  // Applicator (§10)
  allOf: 'schemas', anyOf: 'schemas', oneOf: 'schemas', not: 'schema',
  if: 'schema', then: 'schema', else: 'schema', dependentSchemas: 'schemaMap',
  prefixItems: 'schemas', items: 'schema', contains: 'schema',
  properties: 'schemaMap', patternProperties: 'patternSchemaMap', additionalProperties: 'schema', propertyNames: 'schema',
  // Unevaluated (§11)
  unevaluatedItems: 'schema', unevaluatedProperties: 'schema',
  // Validation (Validation §6)
  type: 'type', enum: 'array', const: 'any',
  multipleOf: 'positiveNumber', maximum: 'number', exclusiveMaximum: 'number', minimum: 'number', exclusiveMinimum: 'number',
  maxLength: 'nonNegativeInteger', minLength: 'nonNegativeInteger', pattern: 'pattern',
  maxItems: 'nonNegativeInteger', minItems: 'nonNegativeInteger', uniqueItems: 'boolean',
  maxContains: 'nonNegativeInteger', minContains: 'nonNegativeInteger',
  maxProperties: 'nonNegativeInteger', minProperties: 'nonNegativeInteger', required: 'uniqueStrings', dependentRequired: 'stringArrays',
  // Format (Validation §7), content (§8), meta-data (§9)
  format: 'format',
  contentEncoding: 'string', contentMediaType: 'string', contentSchema: 'schema',
  title: 'string', description: 'string', default: 'any', deprecated: 'boolean', readOnly: 'boolean', writeOnly: 'boolean',
  examples: 'array',
};

/** The formats the draft defines (Validation §7.3). */
const FORMATS = new Set(['date-time', 'date', 'time', 'duration', 'email', 'idn-email', 'hostname', 'idn-hostname', 'ipv4', 'ipv6',
  'uri', 'uri-reference', 'iri', 'iri-reference', 'uuid', 'uri-template', 'json-pointer', 'relative-json-pointer', 'regex']);

const TYPES = new Set(['null', 'boolean', 'object', 'array', 'number', 'string', 'integer']);

const isObject = (v: Json): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: Json): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const unique = (v: readonly Json[]): boolean => new Set(v.map((x) => JSON.stringify(x))).size === v.length;
const pointer = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1');

function regexProblem(source: string): string | null {
  try {
    new RegExp(source, 'u');
    return null;
  } catch (err) {
    return `not an ECMA-262 regular expression (${(err as Error).message})`;
  }
}

/** Resolves a same-document `$ref` ("#", "#/a/b" or "#anchor"). */
function resolves(root: Json, ref: string, anchors: ReadonlySet<string>): boolean {
  if (!ref.startsWith('#')) return true; // another document: not this walk's to follow
  if (ref === '#') return true;
  if (!ref.startsWith('#/')) return anchors.has(ref.slice(1));
  let at: Json | undefined = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    at = isObject(at) ? at[key] : Array.isArray(at) ? at[Number(key)] : undefined;
    if (at === undefined) return false;
  }
  return true;
}

/** Every problem of `schema` against the 2020-12 vocabulary, as "/json/pointer: what is wrong". */
export function nonStandard(schema: Json): string[] {
  const problems: string[] = [];
  const refs: Array<{ at: string; ref: string }> = [];
  const anchors = new Set<string>();
  const report = (at: string, message: string): void => {
    problems.push(`${at}: ${message}`);
  };

  const walkSchema = (node: Json, at: string): void => {
    if (typeof node === 'boolean') return;
    if (!isObject(node)) {
      report(at || '/', 'a schema must be an object or a boolean');
      return;
    }
    for (const [keyword, value] of Object.entries(node)) {
      const path = `${at}/${pointer(keyword)}`;
      const kind = Object.hasOwn(KEYWORDS, keyword) ? KEYWORDS[keyword] : undefined;
      if (kind === undefined) report(path, 'not a keyword of JSON Schema 2020-12');
      else if (keyword === '$schema' && at !== '') report(path, 'only the root schema may name the draft');
      else checkValue(kind, value, path);
    }
  };

  const checkValue = (kind: Kind, value: Json, path: string): void => {
    const must = (ok: boolean, what: string): void => {
      if (!ok) report(path, `must be ${what}`);
    };
    switch (kind) {
      case 'schema':
        return walkSchema(value, path);
      case 'schemas':
        must(Array.isArray(value) && value.length > 0, 'a non-empty array of schemas');
        if (Array.isArray(value)) value.forEach((s, i) => walkSchema(s, `${path}/${i}`));
        return;
      case 'patternSchemaMap':
      case 'schemaMap':
        must(isObject(value), 'an object of schemas');
        if (!isObject(value)) return;
        for (const [key, s] of Object.entries(value)) {
          const problem = kind === 'patternSchemaMap' ? regexProblem(key) : null;
          if (problem !== null) report(`${path}/${pointer(key)}`, problem);
          walkSchema(s, `${path}/${pointer(key)}`);
        }
        return;
      case 'string':
      case 'uri':
        return must(typeof value === 'string', 'a string');
      case 'anchor':
        must(typeof value === 'string' && /^[A-Za-z_][-A-Za-z0-9._]*$/.test(value), 'a plain-name anchor');
        if (typeof value === 'string') anchors.add(value);
        return;
      case 'ref':
        must(typeof value === 'string', 'a string');
        if (typeof value === 'string') refs.push({ at: path, ref: value });
        return;
      case 'pattern': {
        if (typeof value !== 'string') return must(false, 'a string');
        const problem = regexProblem(value);
        if (problem !== null) report(path, problem);
        return;
      }
      case 'format':
        if (typeof value !== 'string') return must(false, 'a string');
        if (!FORMATS.has(value)) report(path, `${JSON.stringify(value)} is not a format of JSON Schema 2020-12`);
        return;
      case 'any':
        return;
      case 'array':
        return must(Array.isArray(value), 'an array');
      case 'nonNegativeInteger':
        return must(Number.isInteger(value) && (value as number) >= 0, 'a non-negative integer');
      case 'number':
        return must(typeof value === 'number', 'a number');
      case 'positiveNumber':
        return must(typeof value === 'number' && value > 0, 'a number above 0');
      case 'boolean':
        return must(typeof value === 'boolean', 'a boolean');
      case 'type': {
        const names = typeof value === 'string' ? [value] : value;
        if (!isStrings(names) || !unique(names) || names.length === 0) return must(false, 'a type name or an array of unique type names');
        for (const name of names) if (!TYPES.has(name)) report(path, `${JSON.stringify(name)} is not a JSON Schema type`);
        return;
      }
      case 'uniqueStrings':
        return must(isStrings(value) && unique(value), 'an array of unique strings');
      case 'stringArrays':
        return must(isObject(value) && Object.values(value).every((v) => isStrings(v) && unique(v)), 'an object of arrays of unique strings');
      case 'booleanMap':
        return must(isObject(value) && Object.values(value).every((v) => typeof v === 'boolean'), 'an object of booleans');
    }
  };

  walkSchema(schema, '');
  if (isObject(schema) && schema.$schema !== DRAFT) report('/$schema', `must be ${DRAFT}`);
  for (const { at, ref } of refs) {
    if (!resolves(schema, ref, anchors)) report(at, `${JSON.stringify(ref)} does not resolve in the document`);
  }
  return problems;
}
