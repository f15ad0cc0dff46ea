import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { CollectorStore } from '../store.ts';
import type { ConsoleSession } from './console-sessions.ts';

/** Where a standalone proxy's approvals API is, for deciding its requests from the console. */
export interface ApprovalAuthority {
  /** The proxy's admin endpoint, e.g. the quickstart's `http://127.0.0.1:9090`. */
  readonly url: string;
  /** Requests of this cluster's sources are decided there (the proxy's `audit.ship.cluster`). */
  readonly cluster: string;
}

export interface ConsoleDeps {
  readonly store: CollectorStore;
  readonly logger: Logger;
  readonly approvals: ApprovalAuthority | undefined;
}

/** Every route past sign-in has the signed-in session. */
export type ConsoleEnv = { Variables: { session: ConsoleSession } };
export type ConsoleApp = Hono<ConsoleEnv>;
