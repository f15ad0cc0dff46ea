import { readFile } from 'node:fs/promises';
import { describeFileError } from '../cli/audit-files.ts';
import { configDocuments } from '../config/load.ts';
import { UserError } from '../errors.ts';
import { loadPolicyDocuments } from '../policy/load-policy.ts';
import { policyDigest } from '../policy/policy-diff.ts';
import type { CurrentPolicy } from './evidence-input.ts';

/**
 * `--policy FILE`: the policy documents of a proxy config (its settings, and the secrets they name,
 * are not read), of a bundle, or of kubectl's List of the cluster's objects, validated, with the digest
 * `policy.change` records carry.
 */
export async function readPolicyFile(file: string): Promise<CurrentPolicy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UserError(`--policy ${file}: ${describeFileError(error)}`);
  }
  // The policy documents only, as the proxy splits them from its settings: no secret is read, so an
  // auditor's copy of the config serves without the files its settings name.
  const { values, numbers, proxyIndex } = configDocuments(text, file);
  const kept = values.filter((_, i) => i !== proxyIndex);
  // `kubectl get databaseaccesses,guardrails,maskingpolicies -o yaml` writes one List of the objects.
  const documents = kept.flatMap((value) => (isList(value) ? value.items : [value]));
  if (documents.length === 0) throw new UserError(`--policy ${file}: holds no policy documents`);
  // Checked now, so that a bundle that does not load is a usage error before any source is read; the
  // problems name documents by their place in the file, which a List's items do not have.
  const places = numbers.filter((_, i) => i !== proxyIndex);
  loadPolicyDocuments(documents, file, kept.some(isList) ? undefined : places);
  return { file, digest: policyDigest(documents), documents };
}

function isList(value: unknown): value is { items: unknown[] } {
  const object = value as { kind?: unknown; items?: unknown } | null;
  return (
    typeof object === 'object' && object !== null && object.kind === 'List' && Array.isArray(object.items)
  );
}
