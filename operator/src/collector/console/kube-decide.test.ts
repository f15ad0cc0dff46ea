import { describe, expect, it } from 'vitest';
import type { KubeApprovals } from './console-env.ts';
import type { ConsoleUser } from './console-sessions.ts';
import { apiTokenOf, decideInKubernetes, unsafeName } from './kube-decide.ts';

const KUBE: KubeApprovals = {
  server: 'https://api',
  caFile: undefined,
  cluster: 'prod',
  oidcIssuer: undefined,
};
const user = (method: ConsoleUser['method'], apiToken?: string): ConsoleUser => ({
  subject: 's',
  groups: [],
  roles: ['viewer', 'approver'],
  method,
  ...(apiToken !== undefined && { apiToken }),
});

describe('which token the console may send the Kubernetes API server as the person', () => {
  it('sends a pasted Kubernetes token', () => {
    expect(apiTokenOf(user('token', 'k8s-token'), KUBE)).toBe('k8s-token');
  });

  it("sends an OpenID ID token only when the API server trusts the console's provider", () => {
    expect(apiTokenOf(user('oidc', 'id-token'), KUBE)).toBe(undefined);
    expect(apiTokenOf(user('oidc', 'id-token'), { ...KUBE, oidcIssuer: 'https://idp' })).toBe('id-token');
  });

  it('never sends anything for a local user: the collector cannot speak for them', () => {
    expect(apiTokenOf(user('local'), { ...KUBE, oidcIssuer: 'https://idp' })).toBe(undefined);
    expect(apiTokenOf(user('local', 'smuggled'), KUBE)).toBe(undefined);
  });
});

describe('the path a decision is written to', () => {
  it('takes ApprovalRequest names and namespaces as the operator makes them', () => {
    for (const name of ['ar-4f2c0a9e1b7d3c65', 'a', 'x.y-z', '0'.repeat(253)])
      expect(unsafeName({ namespace: 'shop', name })).toBe(undefined);
    expect(unsafeName({ namespace: 'kube-system', name: 'ar-1' })).toBe(undefined);
  });

  // Both come from shipped records: a shipper must not aim the approver's token at another object.
  const ESCAPES = [
    '../secrets/db',
    'ar-1/../../secrets/db',
    'ar-1/status',
    '..',
    'a..b',
    'ar-1?dryRun=All',
    'ar-1#x',
    'ar-1%2F..%2Fsecrets',
    '%2e%2e',
    'AR-1',
    'ar 1',
    'ar-1\n',
    '-ar',
    'ar-',
    '',
    'ar\\1',
    'ar-1;x',
    '\u2024\u2024',
    'ａｒ-1',
    '0'.repeat(254),
  ];
  it.each(ESCAPES)('refuses the name %j', async (name) => {
    expect(unsafeName({ namespace: 'shop', name })).toMatch(/is not an ApprovalRequest name/);
    // Refused before any request: the server does not exist.
    expect(
      await decideInKubernetes(
        { ...KUBE, server: 'https://127.0.0.1:1' },
        't',
        { namespace: 'shop', name },
        { verdict: 'approve', reason: 'r' },
      ),
    ).toEqual({ refused: expect.stringMatching(/is not an ApprovalRequest name/) });
  });
  it.each(ESCAPES.concat(['a.b', '0'.repeat(64)]))('refuses the namespace %j', (namespace) => {
    expect(unsafeName({ namespace, name: 'ar-1' })).toMatch(/is not a Kubernetes namespace name/);
  });
});
