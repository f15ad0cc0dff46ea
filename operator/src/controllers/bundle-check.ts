import { parseAllDocuments } from 'yaml';
import { loadPolicyDocuments } from '../../../sidecar/src/policy/load-policy.ts';
import type { CompiledBundle } from '../compile/compile-bundle.ts';
import type { KubeObject } from '../runtime/kube-api.ts';
import { BUNDLE_CONFIG_KEY } from '../sidecar-layout.ts';

/**
 * Runs the proxy's own policy loader on a compiled bundle, so a bundle the proxy would refuse never
 * reaches a running pod: throws its PolicyError.
 */
export function checkBundle(bundle: CompiledBundle, label: string): void {
  loadPolicyDocuments(policyDocumentsOf(bundle.data[BUNDLE_CONFIG_KEY]!), label);
}

/** The policy documents of a compiled config: every document after the proxy settings. */
function policyDocumentsOf(config: string): unknown[] {
  return parseAllDocuments(config)
    .slice(1)
    .map((document) => document.toJS());
}

/** Name, namespace and annotations: what the compilers read of an object's metadata (they keep the author's stamp). */
export function withAuthor(object: KubeObject, namespace: string) {
  return {
    name: object.metadata.name ?? '',
    namespace,
    ...(object.metadata.annotations !== undefined && { annotations: object.metadata.annotations }),
  };
}
