import { describe, expect, it } from 'vitest';
import type { KubeApprovals } from './console-env.ts';
import type { ConsoleUser } from './console-sessions.ts';
import { apiTokenOf } from './kube-decide.ts';

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
