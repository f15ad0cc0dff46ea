import type { ApprovalSettingsSpec } from '../../../../crds/guardrail.ts';
import type { Identity } from '../../identity/identity.ts';
import type { TextShape } from '../../sql/text-shape.ts';
import type { GuardrailHit } from '../guardrails/decide.ts';
import type { ShapeContext } from '../guardrails/unknown-shape.ts';

/** The rule of a Guardrail that met a shape no person approved. */
export interface ShapeRule {
  readonly guardrail: string;
  readonly namespace?: string;
  readonly rule: string;
  readonly approval?: ApprovalSettingsSpec;
}

/** A shape an `unknown-shape` rule met, for one identity on one database. */
export interface ShapeSeen {
  readonly subject: string;
  readonly database: string;
  readonly fingerprint: string;
  /** The statements with literals as placeholders: what a person approves. */
  readonly shape: string;
  readonly rule: ShapeRule;
}

/** Where the shapes people approved are kept, and those `unknown-shape` rules met are recorded. */
export interface ShapeSource {
  approved(subject: string, database: string, fingerprint: string): boolean;
  seen(shape: ShapeSeen): void;
}

/** What the proxy lends every session's gate beyond the policy documents. */
export interface PolicyHooks {
  readonly shapes?: ShapeSource;
  /** What rules in dryRun would have done to one statement: logged (the audit record has its own note). */
  readonly dryRun?: (hits: readonly GuardrailHit[], identity: Identity) => void;
  /**
   * A statement was refused because it needs clear values of these masked columns
   * (`schema.table.column`): the id of the access request opened (or already open) for them, when
   * the identity's MaskingPolicies ask for one (accessRequests.openOnRefusalSeconds).
   */
  readonly maskingRefused?: (
    identity: Identity,
    database: string,
    columns: readonly string[],
  ) => string | undefined;
}

/** What a client is told of the access request a refusal opened, after the refusal itself. */
export function accessRequestNote(id: string | undefined): string {
  return id === undefined
    ? ''
    : `; access request ${id} asks for clear access to these columns: once an approver runs gatehouse approvals approve ${id}, run the statement again`;
}

/**
 * The shape a text's `unknown-shape` rules ask about, worked out only if one does (`shapeOf`: the
 * protocol's pgTextShape or textShape of the text; null when it has none).
 */
export function shapeContext(
  hooks: PolicyHooks | undefined,
  identity: Identity,
  database: string,
  shapeOf: () => TextShape | null,
): ShapeContext | undefined {
  const shapes = hooks?.shapes;
  if (!shapes) return undefined;
  let text: TextShape | null | undefined;
  const described = () => {
    if (text === undefined) text = shapeOf();
    return text;
  };
  return {
    approved: () => {
      const t = described();
      return t ? shapes.approved(identity.subject, database, t.fingerprint) : undefined;
    },
    unknown: (rule) => {
      const t = described();
      if (t)
        shapes.seen({
          subject: identity.subject,
          database,
          fingerprint: t.fingerprint,
          shape: t.shape,
          rule,
        });
    },
  };
}
