import { describe, expect, it } from 'vitest';
import { DatabaseAccessSpec } from '../../../crds/database-access.ts';
import { GuardrailSpec } from '../../../crds/guardrail.ts';
import { MaskingPolicySpec } from '../../../crds/masking-policy.ts';
import { crdOpenApiSchema } from '../../../crds/openapi.ts';

/**
 * The rules of a structural schema that the API server enforces on a CRD
 * (apiextensions.k8s.io/v1), checked on every node of each kind's spec schema.
 */
function structuralProblems(node: Record<string, unknown>, path: string): string[] {
  const problems: string[] = [];
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  for (const keyword of ['$ref', 'oneOf', 'allOf', 'not', 'const', 'patternProperties', 'uniqueItems', '$id'])
    if (keyword in node) problems.push(`${path}: uses ${keyword}`);
  if ('anyOf' in node && !intOrString) problems.push(`${path}: uses anyOf`);
  if (typeof node['type'] !== 'string' && !intOrString) problems.push(`${path}: has no type`);
  if ('properties' in node && 'additionalProperties' in node)
    problems.push(`${path}: has both properties and additionalProperties`);
  if (node['type'] === 'array') {
    if (typeof node['items'] !== 'object') problems.push(`${path}: array without items`);
    else problems.push(...structuralProblems(node['items'] as Record<string, unknown>, `${path}[]`));
  }
  if (node['type'] === 'object') {
    const properties = node['properties'] as Record<string, Record<string, unknown>> | undefined;
    const additional = node['additionalProperties'];
    if (
      !properties &&
      typeof additional !== 'object' &&
      node['x-kubernetes-preserve-unknown-fields'] !== true
    )
      problems.push(`${path}: object with neither properties nor a value schema`);
    for (const [key, value] of Object.entries(properties ?? {}))
      problems.push(...structuralProblems(value, `${path}.${key}`));
    if (typeof additional === 'object' && additional !== null)
      problems.push(...structuralProblems(additional as Record<string, unknown>, `${path}{}`));
  }
  return problems;
}

function dig(value: unknown, ...keys: string[]): unknown {
  return keys.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], value);
}

describe('CRD schemas', () => {
  it.each([
    ['DatabaseAccess', DatabaseAccessSpec],
    ['Guardrail', GuardrailSpec],
    ['MaskingPolicy', MaskingPolicySpec],
  ])('%s spec is a structural OpenAPI v3 schema', (_, spec) => {
    const schema = crdOpenApiSchema(spec);
    expect(structuralProblems(schema, 'spec')).toEqual([]);
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  it('keeps enums, defaults and descriptions, and drops what the API server rejects', () => {
    const schema = crdOpenApiSchema(GuardrailSpec);
    expect(dig(schema, 'properties', 'mode')).toEqual(
      expect.objectContaining({ type: 'string', enum: ['enforce', 'dryRun'], default: 'enforce' }),
    );
    expect(schema['additionalProperties']).toBeUndefined();
    const access = crdOpenApiSchema(DatabaseAccessSpec);
    const resources = dig(access, 'properties', 'sidecar', 'properties', 'resources');
    expect(dig(resources, 'properties', 'limits')).toEqual({
      type: 'object',
      additionalProperties: {
        'x-kubernetes-int-or-string': true,
        anyOf: [{ type: 'integer' }, { type: 'string' }],
      },
    });
  });

  it('finds what is not structural', () => {
    expect(structuralProblems({ anyOf: [{ type: 'string' }] }, 'x')).toEqual([
      'x: uses anyOf',
      'x: has no type',
    ]);
    expect(structuralProblems({ type: 'object', properties: {}, additionalProperties: false }, 'x')).toEqual([
      'x: has both properties and additionalProperties',
    ]);
  });
});
