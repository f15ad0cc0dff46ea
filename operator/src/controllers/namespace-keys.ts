import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { isConflict, type KubeClient, resourcePath } from '../runtime/kube-api.ts';
import {
  AUDIT_SIGNING_KEY_KEY,
  AUDIT_SIGNING_KEY_SECRET,
  AUDIT_SIGNING_PUBLIC_KEY_KEY,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  MASKING_KEY_KEY,
  MASKING_KEY_SECRET,
} from '../sidecar-layout.ts';

/**
 * The namespace's masking key and audit signing key Secrets, shared by every sidecar and gateway of
 * the namespace: made once, before the first bundle, and never overwritten (see sidecar-layout.ts).
 */
export async function ensureNamespaceKeys(api: KubeClient, namespace: string): Promise<void> {
  // 256 random bits written as text (base64url), since the proxy reads the key file as text.
  await ensureSecretOnce(api, namespace, MASKING_KEY_SECRET, () => ({
    [MASKING_KEY_KEY]: randomBytes(32).toString('base64url'),
  }));
  await ensureSecretOnce(api, namespace, AUDIT_SIGNING_KEY_SECRET, () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return {
      [AUDIT_SIGNING_KEY_KEY]: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      [AUDIT_SIGNING_PUBLIC_KEY_KEY]: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
  });
}

/** Creates a Secret of ours unless it exists; another replica or reconcile that made it first wins. */
async function ensureSecretOnce(
  api: KubeClient,
  namespace: string,
  name: string,
  stringData: () => Record<string, string>,
): Promise<void> {
  const path = resourcePath('v1', 'secrets', namespace, name);
  if (await api.getOptional<V1Secret>(path)) return;
  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels: { [LABEL_MANAGED_BY]: MANAGED_BY } },
    type: 'Opaque',
    stringData: stringData(),
  };
  try {
    await api.create(resourcePath('v1', 'secrets', namespace), secret);
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
}
