import { isDeepStrictEqual } from 'node:util';
import { parseProxyConfig } from '../config/load.ts';
import { loadPolicyDocuments, type Policy } from './load-policy.ts';

/** What a new version of the config file changes in the policy, by `Kind name` (`Guardrail defaults`). */
export interface PolicyChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

export type PolicyReload =
  | {
      readonly accepted: true;
      /** Undefined when the file holds no policy (and says so). */
      readonly policy: Policy | undefined;
      readonly documents: readonly unknown[];
      readonly change: PolicyChange;
      /** `policy.changedBy` of the new file: who made this version, when its writer says. */
      readonly changedBy: string | undefined;
    }
  | { readonly accepted: false; readonly reason: string };

/**
 * Decides whether a changed config file's policy replaces the one in force. Refused: a file that does
 * not load, and a file that drops every policy document of one that had some without saying so
 * (`policy.none: true`); an editor saving a half-deleted file must not turn masking off.
 */
export function reloadPolicy(current: readonly unknown[], text: string, source: string): PolicyReload {
  let documents: readonly unknown[];
  let policy: Policy | undefined;
  let policyNone: boolean;
  let changedBy: string | undefined;
  try {
    const config = parseProxyConfig(text, source);
    documents = config.policyDocuments;
    policyNone = config.policyNone;
    changedBy = config.policyChangedBy;
    policy =
      documents.length > 0 ? loadPolicyDocuments(documents, source, config.policyDocumentNumbers) : undefined;
  } catch (error) {
    return { accepted: false, reason: error instanceof Error ? error.message : String(error) };
  }
  if (documents.length === 0 && current.length > 0 && !policyNone) {
    return {
      accepted: false,
      reason: `${source} now holds no policy documents (it held ${current.map(documentName).join(', ')}); to run without any policy on purpose, set policy.none: true in its proxy settings`,
    };
  }
  return { accepted: true, policy, documents, change: policyChange(current, documents), changedBy };
}

export function policyChange(before: readonly unknown[], after: readonly unknown[]): PolicyChange {
  const old = byName(before);
  const now = byName(after);
  return {
    added: [...now.keys()].filter((name) => !old.has(name)),
    removed: [...old.keys()].filter((name) => !now.has(name)),
    changed: [...now.keys()].filter(
      (name) => old.has(name) && !isDeepStrictEqual(old.get(name), now.get(name)),
    ),
  };
}

/** One clause a person reads: `added Guardrail strict; removed MaskingPolicy pii`. */
export function describePolicyChange(change: PolicyChange): string {
  const parts = (['added', 'removed', 'changed'] as const)
    .filter((what) => change[what].length > 0)
    .map((what) => `${what} ${change[what].join(', ')}`);
  return parts.length > 0 ? parts.join('; ') : 'no policy document changed';
}

function byName(documents: readonly unknown[]): Map<string, unknown> {
  return new Map(documents.map((document) => [documentName(document), document]));
}

/** `Guardrail defaults`, `MaskingPolicy shop/pii`; loaded documents have a kind and a name. */
export function documentName(document: unknown): string {
  const record = document as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const namespace = typeof record.metadata?.namespace === 'string' ? `${record.metadata.namespace}/` : '';
  return `${String(record.kind)} ${namespace}${String(record.metadata?.name)}`;
}
