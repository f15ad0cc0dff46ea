/**
 * Where things live in an injected pod: the one agreement between the policy compiler (which writes
 * paths into the sidecar's config), the injector (which mounts volumes at them) and the tests that
 * play kubelet. Change a value here, not in either side.
 */

/** Names the operator gives to objects it owns, and the labels and annotations it reads or writes. */
export const LABEL_INJECT = 'gatehouse.dev/inject';
/** Set to "disabled" on a pod (or its template) to opt out of injection. */
export const INJECT_DISABLED = 'disabled';
export const ANNOTATION_INJECTED = 'gatehouse.dev/injected';
/** Hash of what was injected (access spec + bundle name + image); re-injection replaces when it differs. */
export const ANNOTATION_SPEC_HASH = 'gatehouse.dev/spec-hash';
/** Stamped on selected workloads' pod templates when a change needs new pods. */
export const ANNOTATION_RESTARTED_FOR = 'gatehouse.dev/restarted-for';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'gatehouse-operator';
/** Label on a bundle ConfigMap naming the DatabaseAccess it was compiled from. */
export const LABEL_BUNDLE_OF = 'gatehouse.dev/database-access';
export const FINALIZER = 'gatehouse.dev/finalizer';

/** Name of the policy bundle ConfigMap compiled from a DatabaseAccess (same namespace). */
export function bundleConfigMapName(accessName: string): string {
  return `gatehouse-bundle-${accessName}`.slice(0, 253);
}

/**
 * The namespace's masking key, made by the operator once (32 random bytes) and shared by every
 * sidecar of the namespace, so that `hash` and `tokenize` give the same values in every pod and
 * across restarts: masked joins keep working. Never rotated by the operator (rotating changes every
 * token); delete the Secret to make a new one.
 */
export const MASKING_KEY_SECRET = 'gatehouse-masking-key';
export const MASKING_KEY_KEY = 'key';

/**
 * The namespace's audit signing key (Ed25519, PKCS#8 PEM) and its public half, made by the operator
 * once and shared by every sidecar of the namespace, so that each pod's audit log is signed by a key
 * that outlives the pod's restarts and that an auditor can pin (`gatehouse audit verify --public-key`,
 * with `public.pem` from the Secret). Never rotated by the operator; delete the Secret to make a new one
 * (logs written since then verify with the new key pinned).
 */
export const AUDIT_SIGNING_KEY_SECRET = 'gatehouse-audit-signing-key';
export const AUDIT_SIGNING_KEY_KEY = 'key.pem';
export const AUDIT_SIGNING_PUBLIC_KEY_KEY = 'public.pem';

/** Keys of the bundle ConfigMap. */
export const BUNDLE_CONFIG_KEY = 'gatehouse.yaml';
/** The cluster's service-account JWKS, fetched by the operator, so sidecars verify tokens offline. */
export const BUNDLE_JWKS_KEY = 'jwks.json';
/** The CA of the operator's webhook certificate, which signs its approvals endpoint too. */
export const BUNDLE_OPERATOR_CA_KEY = 'operator-ca.crt';
/**
 * The CA that verifies the audit collector's certificate (`audit.ship.caFile`); empty while the
 * collector has none yet, and the sidecar then ships nothing (never in clear).
 */
export const BUNDLE_COLLECTOR_CA_KEY = 'collector-ca.crt';

/** Mount points inside the sidecar container. */
export const BUNDLE_MOUNT = '/etc/gatehouse/bundle';
export const CREDENTIALS_MOUNT = '/etc/gatehouse/credentials';
export const MASKING_KEY_MOUNT = '/etc/gatehouse/masking-key';
export const AUDIT_SIGNING_KEY_MOUNT = '/etc/gatehouse/audit-signing-key';
/** The CA that signs the database's certificate (spec.upstream.tls.caSecretRef), as `ca.crt`. */
export const UPSTREAM_CA_MOUNT = '/etc/gatehouse/upstream-ca';
export const UPSTREAM_CA_FILE = 'ca.crt';
export const TOKEN_MOUNT = '/var/run/secrets/gatehouse.dev/serviceaccount';
export const TOKEN_FILE = 'token';
/** emptyDir for the audit log (the root filesystem is read-only). */
export const AUDIT_MOUNT = '/var/lib/gatehouse/audit';
export const AUDIT_FILE = 'audit.jsonl';

/** Projected token: audience and lifetime. */
export const TOKEN_AUDIENCE = 'gatehouse.dev';
export const TOKEN_EXPIRATION_SECONDS = 3600;

/**
 * The pod's projected token for Gatehouse (audience gatehouse.dev, never the API server's), which
 * the kubelet renews in place: a sidecar's identity, and what a sidecar or gateway shows the operator.
 */
export function tokenVolume() {
  return {
    name: VOLUME_TOKEN,
    projected: {
      sources: [
        {
          serviceAccountToken: {
            audience: TOKEN_AUDIENCE,
            expirationSeconds: TOKEN_EXPIRATION_SECONDS,
            path: TOKEN_FILE,
          },
        },
      ],
    },
  };
}

/** Ports: the app connects to 127.0.0.1:<listen port>; probes and metrics on the admin port. */
export const DEFAULT_LISTEN_PORT = { postgres: 5432, mysql: 3306 } as const;
export const DEFAULT_UPSTREAM_PORT = { postgres: 5432, mysql: 3306 } as const;
export const ADMIN_PORT = 15090;
/** The sidecar's MCP endpoint when `spec.sidecar.mcp` gives no port. */
export const DEFAULT_MCP_PORT = 8808;

/** Volume names in the pod (prefixed so they do not collide with the app's). */
export const VOLUME_BUNDLE = 'gatehouse-bundle';
export const VOLUME_CREDENTIALS = 'gatehouse-credentials';
export const VOLUME_TOKEN = 'gatehouse-token';
export const VOLUME_AUDIT = 'gatehouse-audit';
export const VOLUME_MASKING_KEY = 'gatehouse-masking-key';
export const VOLUME_AUDIT_SIGNING_KEY = 'gatehouse-audit-signing-key';
export const VOLUME_UPSTREAM_CA = 'gatehouse-upstream-ca';

/** The sidecar's command line: the image's entrypoint is `gatehouse`. */
export const SIDECAR_ARGS = ['proxy', '--config', `${BUNDLE_MOUNT}/${BUNDLE_CONFIG_KEY}`] as const;
