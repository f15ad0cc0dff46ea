/**
 * Turns a kind's spec schema into the `openAPIV3Schema` of its CustomResourceDefinition. The schemas
 * are written for local validation, where an unknown field is an error worth reporting; the API
 * server prunes unknown fields instead and rejects `additionalProperties: false` beside `properties`.
 */
export function crdOpenApiSchema(schema: unknown): Record<string, unknown> {
  return convert(schema) as Record<string, unknown>;
}

function convert(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convert);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'additionalProperties' && value === false) continue;
    out[key] = convert(value);
  }
  // A map (`additionalProperties: <schema>`) must not also list properties.
  const properties = out['properties'];
  if (
    typeof out['additionalProperties'] === 'object' &&
    typeof properties === 'object' &&
    properties !== null &&
    Object.keys(properties).length === 0
  ) {
    delete out['properties'];
  }
  return out;
}
