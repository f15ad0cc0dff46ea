/**
 * The approvals API of a proxy under test, as a person would call it: local users whose password is
 * `NAME-secret` (the e2e configs' convention), over HTTP to the admin endpoint.
 */
export function approvalsClient(adminPort: () => number | undefined) {
  const call = async (
    path: string,
    user: string,
    body?: unknown,
    // biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field in the tests
  ): Promise<{ status: number; body: any }> => {
    const response = await fetch(`http://127.0.0.1:${adminPort()}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${user}:${user}-secret`).toString('base64')}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: await response.json() };
  };
  /** The Pending request whose statement is `statement`, once it appears (as `approver` sees it). */
  const pendingFor = async (statement: string, approver = 'lead'): Promise<{ id: string }> => {
    for (let i = 0; i < 200; i++) {
      const { body } = await call('/approvals?phase=Pending', approver);
      const found = (body as { id: string; statement: string }[]).find((r) => r.statement === statement);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`no Pending request for ${statement}`);
  };
  return { api: call, pendingFor };
}

/**
 * The identity settings of an approvals test: local users named `requesters` (password `NAME-secret`)
 * and `lead`, the approver (group `approvers`), as the rules under test name them.
 */
export function approvalUsers(...requesters: string[]) {
  return {
    identity: {
      mode: 'local',
      local: {
        users: [
          ...requesters.map((name) => ({ name, password: `${name}-secret` })),
          { name: 'lead', password: 'lead-secret', groups: ['approvers'] },
        ],
      },
    },
  };
}
