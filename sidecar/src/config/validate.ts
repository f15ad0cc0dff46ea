import type { TSchema } from 'typebox';
import Value from 'typebox/value';

/** One schema violation, located by a dotted path (`upstream.tls.mode`, `identity.local.users[0].name`). */
export interface SchemaProblem {
  readonly field: string;
  readonly problem: string;
}

/** JSON pointer `/a/0/b` → `a[0].b`. */
export function pointerToField(pointer: string): string {
  let field = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    field += /^\d+$/.test(part) ? `[${part}]` : field ? `.${part}` : part;
  }
  return field;
}

/**
 * Validates `value` against `schema` and returns the problems, most specific first: the schema
 * library reports every failed branch, while a person wants one sentence per wrong field.
 */
export function schemaProblems(schema: TSchema, value: unknown): SchemaProblem[] {
  const byField = new Map<string, string>();
  for (const error of Value.Errors(schema, value)) {
    const params = error.params as Record<string, unknown>;
    let field = pointerToField(error.instancePath);
    let problem: string;
    switch (error.keyword) {
      case 'additionalProperties': {
        const extra = (params['additionalProperties'] as string[] | undefined) ?? [];
        for (const name of extra) {
          byField.set(field ? `${field}.${name}` : name, 'is not a known field');
        }
        continue;
      }
      case 'boolean':
        // The per-property echo of additionalProperties: false; reported above.
        continue;
      case 'required': {
        const missing = (params['requiredProperties'] as string[] | undefined) ?? [];
        for (const name of missing) byField.set(field ? `${field}.${name}` : name, 'is required');
        continue;
      }
      case 'enum':
        problem = `must be one of ${(params['allowedValues'] as unknown[]).map(String).join(', ')}`;
        break;
      case 'const':
        problem = `must be ${JSON.stringify(params['allowedValue'])}`;
        break;
      case 'type':
        problem = `must be ${describeType(params['type'])}`;
        break;
      case 'pattern':
        problem = `is not in the expected form`;
        break;
      case 'anyOf':
      case 'oneOf':
        problem = 'does not match any allowed form';
        break;
      default:
        problem = error.message;
    }
    if (!field) field = '(document)';
    // Keep the first, most specific sentence per field; the anyOf summary only when nothing better exists.
    if (!byField.has(field)) byField.set(field, problem);
  }
  return [...byField].map(([field, problem]) => ({ field, problem }));
}

function describeType(type: unknown): string {
  const names = Array.isArray(type) ? type : [type];
  return names
    .map((t) =>
      t === 'integer' ? 'a whole number' : t === 'object' ? 'a mapping' : t === 'array' ? 'a list' : `a ${t}`,
    )
    .join(' or ');
}
