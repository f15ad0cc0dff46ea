import { base64url, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

/** A token issuer for tests: a real key pair, its public halves, and a signer. */
export interface TestIssuer {
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  /** The public key as a JWK with `kid`, `alg` and `use`, as an issuer publishes it. */
  readonly publicJwk: JWK;
  /** The public key as SPKI PEM. */
  readonly publicPem: string;
  sign(claims: JWTPayload, header?: { readonly kid?: string | undefined }): Promise<string>;
}

export async function createTestIssuer(alg: 'RS256' | 'ES256', kid: string): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return {
    alg,
    kid,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
    publicPem: await exportSPKI(publicKey),
    sign: (claims, header = { kid }) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg, typ: 'JWT', ...(header.kid !== undefined && { kid: header.kid }) })
        .sign(privateKey),
  };
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The claims of a projected, pod-bound service-account token, as kube-apiserver writes them. */
export function serviceAccountClaims(options: {
  readonly issuer: string;
  readonly audience: string | string[];
  readonly namespace: string;
  readonly name: string;
  readonly pod?: string;
  readonly issuedAt?: number;
  readonly lifetimeSeconds?: number;
}): JWTPayload {
  const iat = options.issuedAt ?? nowSeconds();
  return {
    aud: options.audience,
    exp: iat + (options.lifetimeSeconds ?? 3600),
    iat,
    nbf: iat,
    iss: options.issuer,
    jti: crypto.randomUUID(),
    'kubernetes.io': {
      namespace: options.namespace,
      node: { name: 'node-1', uid: crypto.randomUUID() },
      ...(options.pod !== undefined && { pod: { name: options.pod, uid: crypto.randomUUID() } }),
      serviceaccount: { name: options.name, uid: crypto.randomUUID() },
    },
    sub: `system:serviceaccount:${options.namespace}:${options.name}`,
  };
}

/** A token with `alg: none` and no signature, as an attacker would craft it. */
export function unsignedToken(claims: JWTPayload): string {
  const part = (value: object) => base64url.encode(JSON.stringify(value));
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}
