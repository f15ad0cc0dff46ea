import Type, { type TSchema } from 'typebox';

/**
 * Building blocks shared by the Gatehouse API kinds. Every schema here must stay usable as a
 * CustomResourceDefinition's structural OpenAPI v3 schema (see openapi.ts): a `type` on every node,
 * `enum` instead of unions of constants, no `$ref`, objects with known properties.
 */

export const API_GROUP = 'gatehouse.dev';
export const API_VERSION = `${API_GROUP}/v1alpha1`;

/**
 * Who last changed a DatabaseAccess, Guardrail or MaskingPolicy's spec, as the API server authenticated
 * them: written by the operator's admission webhook (never by the client), carried into the sidecar's
 * bundle, and named by the sidecar's policy.change audit records.
 */
export const CHANGED_BY_ANNOTATION = `${API_GROUP}/changed-by`;

/** A string restricted to `values`, written as `{type: string, enum: [...]}` as CRD schemas need. */
export function stringEnum<const T extends readonly string[]>(
  values: T,
  options: {
    description?: string;
    default?: T[number];
    maxLength?: number;
    'x-kubernetes-validations'?: CelRule[];
  } = {},
) {
  return Type.Enum(values as unknown as T[number][], { type: 'string', ...options });
}

/**
 * A CEL rule that the API server checks on the node that carries it (`x-kubernetes-validations`).
 * Local validation ignores these; they are for the rules a structural schema cannot say: one-of
 * choices and immutable fields (a rule that reads `oldSelf` runs on updates only).
 */
export type CelRule = { rule: string; message: string };

/** An RFC 1123 name, as Kubernetes requires for object names. */
export const ObjectName = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
  description: 'Lower-case letters, digits, "-" and ".", starting and ending with a letter or digit.',
});

/** An RFC 1123 label, as Kubernetes requires for namespaces and rule names. */
export const LabelName = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  description: 'Lower-case letters, digits and "-", starting and ending with a letter or digit.',
});

export const SUBJECT_KINDS = ['ServiceAccount', 'User', 'Group'] as const;

/**
 * Who a grant, rule or exemption is about. A ServiceAccount is matched against the token subject
 * `system:serviceaccount:NAMESPACE:NAME` (namespace defaults to the document's own), a User against
 * the subject exactly (`local:NAME` for local users), a Group against the identity's groups.
 */
export const Subject = Type.Object(
  {
    kind: stringEnum(SUBJECT_KINDS),
    name: Type.String({ minLength: 1 }),
    namespace: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'ServiceAccount only; defaults to the namespace of the document that names it.',
      }),
    ),
  },
  { additionalProperties: false },
);

/**
 * The part of Kubernetes object metadata that policy reads. Other metadata fields (labels,
 * annotations, uid...) are accepted and ignored, so objects read from the API server load as they are.
 */
export const ObjectMeta = Type.Object({
  name: ObjectName,
  namespace: Type.Optional(LabelName),
});

/** A whole document of one kind: what a YAML file holds, and what the API server stores. */
export function documentSchema<const K extends string, S extends TSchema>(kind: K, spec: S) {
  return Type.Object(
    {
      apiVersion: stringEnum([API_VERSION]),
      kind: stringEnum([kind]),
      metadata: ObjectMeta,
      spec,
      status: Type.Optional(Type.Unknown({ description: 'Written by the operator; ignored on load.' })),
    },
    { additionalProperties: false },
  );
}
