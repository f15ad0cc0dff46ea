/** Who is on the other end of a connection, established before its first statement. */
export interface Identity {
  /** `system:serviceaccount:NS:NAME` for workloads, the token's `sub` for people, `local:NAME` for local users. */
  readonly subject: string;
  readonly groups: readonly string[];
  readonly method: 'token' | 'token-file' | 'local';
  readonly issuer?: string;
  /** From the Kubernetes `kubernetes.io` claim of a service-account token. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly pod?: string;
  /** Token expiry, epoch seconds. */
  readonly expiresAt?: number;
  /**
   * A token exchanged on someone's behalf (RFC 8693 `act` claim): who acts for the subject, the
   * current actor first, then the ones it acts for in turn. The subject is still whom policy grants.
   */
  readonly actors?: readonly string[];
}

/** Why authentication failed; `sqlstate` follows PostgreSQL (28P01 bad password/token, 28000 not allowed). */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly sqlstate: '28P01' | '28000';
  constructor(message: string, sqlstate: '28P01' | '28000' = '28P01') {
    super(message);
    this.sqlstate = sqlstate;
  }
}

/** What a connection offers as proof of identity. */
export interface Credentials {
  /** The user name from the client's startup message. */
  readonly user: string;
  /** The password the client sent (a JWT in `token` mode); absent when the authenticator needs none. */
  readonly password?: string;
}

export interface Authenticator {
  /** True when the proxy must ask the client for a password (`token`, `local`); false in `token-file` mode. */
  readonly needsPassword: boolean;
  /** Resolves the identity or throws AuthError. Never logs the password or token. */
  authenticate(credentials: Credentials): Promise<Identity>;
  /** Releases file watchers and timers. */
  close(): void;
}
