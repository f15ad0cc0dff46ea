import type { Authenticator } from '../../../../sidecar/src/identity/identity.ts';
import type { TokenReviewer } from '../collector-auth.ts';
import type { ConsoleRole, ConsoleUser } from './console-sessions.ts';

/** One entry of `console.viewers` / `console.approvers`: a subject, or everyone in a group. */
export type RoleMember = { readonly subject: string } | { readonly group: string };

export interface ConsoleAccess {
  readonly viewers: readonly RoleMember[];
  readonly approvers: readonly RoleMember[];
  /** `auth.readers`: subjects the API lets read, viewers here too. */
  readonly readers: readonly string[];
}

/**
 * The console's roles for an identity. Every local user reads the audit, as through the API; others
 * read when `auth.readers` or `console.viewers` names them. Approvers are named by `console.approvers`
 * only, and view too. No role: the sign-in is refused.
 */
export function rolesOf(
  identity: { readonly subject: string; readonly groups: readonly string[]; readonly local: boolean },
  access: ConsoleAccess,
): ConsoleRole[] {
  const matches = (members: readonly RoleMember[]) =>
    members.some((m) =>
      'subject' in m ? m.subject === identity.subject : identity.groups.includes(m.group),
    );
  const approver = matches(access.approvers);
  const viewer =
    approver || identity.local || access.readers.includes(identity.subject) || matches(access.viewers);
  return [...(viewer ? (['viewer'] as const) : []), ...(approver ? (['approver'] as const) : [])];
}

export type SignIn = ConsoleUser | { readonly refused: string };

export async function signInLocal(
  users: Authenticator | undefined,
  access: ConsoleAccess,
  name: string,
  password: string,
): Promise<SignIn> {
  if (!users) return { refused: 'this collector has no local users' };
  let identity: { subject: string; groups: readonly string[] };
  try {
    identity = await users.authenticate({ user: name, password });
  } catch {
    // The same answer for an unknown user and a wrong password.
    return { refused: 'wrong user name or password' };
  }
  const roles = rolesOf({ ...identity, local: true }, access);
  return {
    subject: identity.subject,
    groups: identity.groups,
    roles,
    method: 'local',
    forward: `Basic ${Buffer.from(`${name}:${password}`, 'utf8').toString('base64')}`,
  };
}

/** A Kubernetes token (`kubectl create token`, or a person's), checked with TokenReview. */
export async function signInToken(
  reviewer: TokenReviewer | undefined,
  access: ConsoleAccess,
  token: string,
): Promise<SignIn> {
  if (!reviewer) return { refused: 'this collector does not check Kubernetes tokens (auth.tokenReview)' };
  const user = await reviewer.review(token);
  if (!user) return { refused: 'the token did not pass TokenReview' };
  const roles = rolesOf({ subject: user.username, groups: user.groups, local: false }, access);
  return {
    subject: user.username,
    groups: user.groups,
    roles,
    method: 'token',
    forward: `Bearer ${token}`,
    apiToken: token,
  };
}
