import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { CollectorStore } from '../store.ts';
import type { ConsoleSession, ConsoleSessions } from './console-sessions.ts';

/** Where a standalone proxy's approvals API is, for deciding its requests from the console. */
export interface ApprovalAuthority {
  /** The proxy's admin endpoint, e.g. the quickstart's `http://127.0.0.1:9090`. */
  readonly url: string;
  /** Requests of this cluster's sources are decided there (the proxy's `audit.ship.cluster`). */
  readonly cluster: string;
}

/**
 * The Kubernetes API server where one cluster's ApprovalRequests are decided. The console writes
 * `status.decision` there with the signed-in person's own token, never the collector's.
 */
export interface KubeApprovals {
  /** `https://kubernetes.default.svc` in the cluster, or the API server's URL from outside. */
  readonly server: string;
  /** The CA of the API server's certificate; undefined: the system's CAs. */
  readonly caFile: string | undefined;
  /** Requests of this cluster's sources are ApprovalRequests there (the sidecars' `audit.ship.cluster`). */
  readonly cluster: string;
  /** Set when the API server trusts the console's OpenID provider: its people's ID tokens are forwarded. */
  readonly oidcIssuer: string | undefined;
}

export interface ConsoleDeps {
  readonly store: CollectorStore;
  readonly logger: Logger;
  readonly approvals: ApprovalAuthority | undefined;
  readonly kubeApprovals?: KubeApprovals | undefined;
  readonly sessions: ConsoleSessions;
}

/** Every route past sign-in has the signed-in session. */
export type ConsoleEnv = { Variables: { session: ConsoleSession } };
export type ConsoleApp = Hono<ConsoleEnv>;
