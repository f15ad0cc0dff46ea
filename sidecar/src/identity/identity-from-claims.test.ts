import type { JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { AuthError } from './identity.ts';
import { identityFromClaims } from './identity-from-claims.ts';

const oidc = { method: 'token', subjectClaim: 'sub', groupsClaim: 'groups' } as const;
const kubernetes = (namespace: string, account: string, pod?: object) => ({
  namespace,
  serviceaccount: { name: account, uid: 'u1' },
  ...(pod && { pod }),
});

describe('identityFromClaims', () => {
  const accepted: [string, JWTPayload, object][] = [
    [
      'a pod-bound service-account token',
      {
        sub: 'system:serviceaccount:shop:orders',
        iss: 'k8s',
        exp: 10,
        'kubernetes.io': kubernetes('shop', 'orders', { name: 'orders-1', uid: 'p' }),
      },
      {
        subject: 'system:serviceaccount:shop:orders',
        namespace: 'shop',
        serviceAccount: 'orders',
        pod: 'orders-1',
        issuer: 'k8s',
        expiresAt: 10,
        groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      },
    ],
    [
      'a service-account token not bound to a pod',
      { sub: 'system:serviceaccount:ci:deployer', 'kubernetes.io': kubernetes('ci', 'deployer') },
      {
        subject: 'system:serviceaccount:ci:deployer',
        namespace: 'ci',
        serviceAccount: 'deployer',
        pod: undefined,
      },
    ],
    [
      'a service-account subject without the kubernetes.io claim',
      { sub: 'system:serviceaccount:ci:deployer' },
      {
        namespace: 'ci',
        serviceAccount: 'deployer',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:ci', 'system:authenticated'],
      },
    ],
    [
      'an OIDC user with a list of groups',
      { sub: 'ada', groups: ['a', 'b', 'a', ''] },
      { subject: 'ada', groups: ['a', 'b'] },
    ],
    [
      'an OIDC user with one group as a string',
      { sub: 'ada', groups: 'a' },
      { subject: 'ada', groups: ['a'] },
    ],
    ['an OIDC user without groups', { sub: 'ada' }, { subject: 'ada', groups: [], namespace: undefined }],
  ];
  for (const [name, claims, expected] of accepted) {
    it(`reads ${name}`, () => {
      const identity = identityFromClaims(claims, oidc);
      const present = Object.entries(expected).filter(([, value]) => value !== undefined);
      expect(identity).toMatchObject({ method: 'token', ...Object.fromEntries(present) });
      // Absent, not present as undefined: identities are compared and serialised elsewhere.
      for (const [key, value] of Object.entries(expected))
        if (value === undefined) expect(identity).not.toHaveProperty(key);
    });
  }

  const refused: [string, JWTPayload, string][] = [
    [
      'a malformed service-account subject',
      { sub: 'system:serviceaccount:shop' },
      'token subject is not of the form system:serviceaccount:NAMESPACE:NAME',
    ],
    [
      'a subject with too many parts',
      { sub: 'system:serviceaccount:a:b:c' },
      'token subject is not of the form system:serviceaccount:NAMESPACE:NAME',
    ],
    [
      'another namespace in the claim',
      { sub: 'system:serviceaccount:shop:orders', 'kubernetes.io': kubernetes('kube-system', 'orders') },
      'token subject does not match the namespace and service account of its "kubernetes.io" claim',
    ],
    [
      'another account in the claim',
      { sub: 'system:serviceaccount:shop:orders', 'kubernetes.io': kubernetes('shop', 'admin') },
      'token subject does not match the namespace and service account of its "kubernetes.io" claim',
    ],
    [
      'a kubernetes.io claim that is not an object',
      { sub: 'system:serviceaccount:shop:orders', 'kubernetes.io': 'shop' },
      'token claim "kubernetes.io" must be an object',
    ],
    ['no subject', { groups: ['a'] }, 'token has no "sub" claim to name its subject'],
    ['an empty subject', { sub: '' }, 'token claim "sub" must be a non-empty string'],
    [
      'groups that are not strings',
      { sub: 'ada', groups: [1, 2] },
      'token claim "groups" must be a string or a list of strings',
    ],
    [
      'groups as an object',
      { sub: 'ada', groups: { admin: true } },
      'token claim "groups" must be a string or a list of strings',
    ],
  ];
  for (const [name, claims, message] of refused) {
    it(`refuses ${name}`, () => {
      expect(() => identityFromClaims(claims, oidc)).toThrow(AuthError);
      expect(() => identityFromClaims(claims, oidc)).toThrow(message);
    });
  }

  it('records the actors of an exchanged token (RFC 8693 act), the current one first', () => {
    expect(identityFromClaims({ sub: 'ada', act: { sub: 'agent-7' } }, oidc)).toMatchObject({
      subject: 'ada',
      actors: ['agent-7'],
    });
    expect(
      identityFromClaims({ sub: 'ada', act: { sub: 'mcp-gateway', act: { sub: 'agent-7', iss: 'x' } } }, oidc)
        .actors,
    ).toEqual(['mcp-gateway', 'agent-7']);
    // A service account acting for someone keeps its own workload fields beside the actor.
    expect(
      identityFromClaims(
        {
          sub: 'system:serviceaccount:shop:orders',
          'kubernetes.io': kubernetes('shop', 'orders'),
          act: { sub: 'ci' },
        },
        oidc,
      ),
    ).toMatchObject({ serviceAccount: 'orders', actors: ['ci'] });
    expect(identityFromClaims({ sub: 'ada' }, oidc)).not.toHaveProperty('actors');
    let deep: Record<string, unknown> = { sub: 'a9' };
    for (let i = 8; i >= 0; i--) deep = { sub: `a${i}`, act: deep };
    for (const [act, message] of [
      ['agent-7', 'must be an object'],
      [['agent-7'], 'must be an object'],
      [null, 'must be an object'],
      [{}, 'non-empty "sub"'],
      [{ sub: '' }, 'non-empty "sub"'],
      [{ sub: 7 }, 'non-empty "sub"'],
      [{ sub: 'ok', act: 'bad' }, 'must be an object'],
      [deep, 'nests more than 8 actors'],
    ] as const) {
      expect(() => identityFromClaims({ sub: 'ada', act } as JWTPayload, oidc)).toThrow(AuthError);
      expect(() => identityFromClaims({ sub: 'ada', act } as JWTPayload, oidc)).toThrow(message);
    }
  });

  it('uses the configured claims for OIDC users but always sub for service accounts', () => {
    const mapping = { method: 'token-file', subjectClaim: 'email', groupsClaim: 'roles' } as const;
    expect(
      identityFromClaims(
        { sub: 'x1', email: 'ada@example.test', roles: ['dba'], groups: ['ignored'] },
        mapping,
      ),
    ).toMatchObject({
      subject: 'ada@example.test',
      groups: ['dba'],
      method: 'token-file',
    });
    expect(
      identityFromClaims({ sub: 'system:serviceaccount:a:b', email: 'x@example.test' }, mapping).subject,
    ).toBe('system:serviceaccount:a:b');
  });
});
