import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { McpTool } from '../policy/mcp-tools.ts';
import type { InProcessProxy } from '../protocol/in-process-channel.ts';
import type { BoundedResult, ResultBounds } from './bound-results.ts';
import type { ToolDialect } from './dialects.ts';

/** Who the agent is to the proxy: what a psql or mysql user would type, never anything weaker. */
export type AgentCredentials =
  /** The proxy's token-file mode: it proves the pod's identity itself and asks for no password. */
  | { readonly kind: 'pod' }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'token-file'; readonly path: string }
  | { readonly kind: 'local'; readonly user: string; readonly password: string };

export interface ProxyEndpoint {
  readonly host: string;
  readonly port: number;
  /** PEM CA bundle when the proxy serves TLS to its clients (verified against `host`). */
  readonly ca?: Buffer;
}

/**
 * How the MCP server reaches the proxy: over TCP as any client (a proxy elsewhere: it cannot tell
 * the tool from a label), or handed in process to the proxy it runs in, which then knows the tool.
 */
export type ProxyRoute = ProxyEndpoint | InProcessProxy;

export function isInProcess(route: ProxyRoute): route is InProcessProxy {
  return 'connect' in route;
}

/** A statement's answer, or the error the proxy (or the database) gave instead. */
export type Outcome =
  | {
      readonly ok: true;
      readonly result: BoundedResult;
      readonly command?: string;
      readonly notices: string[];
      /** Output columns the proxy reported masked for this identity (`*`: all of them). */
      readonly masked?: readonly string[];
    }
  | {
      readonly ok: false;
      readonly sqlstate?: string;
      /** MySQL's error number. */
      readonly errno?: number;
      readonly message: string;
      /** The proxy refused it by policy (a guardrail, a grant): the same text gets the same answer. */
      readonly policy: boolean;
      readonly notices: string[];
    };

/** One connection to the proxy, as the agent, for one tool call: what the tools ask of either protocol. */
export interface ProxySession {
  /** One statement, its rows read only up to the bounds. */
  statement(sql: string, values: readonly unknown[], bounds: ResultBounds): Promise<Outcome>;
  /** A text of any number of statements (execute's multi-statement texts): the last result is kept. */
  text(sql: string, bounds: ResultBounds): Promise<Outcome>;
  /** A statement whose failure ends the tool call (BEGIN, ROLLBACK): its error is the answer. */
  control(sql: string): Promise<Outcome | undefined>;
  /** Resolves with the first notice (past or future) that `test` accepts; never, where none come. */
  noticeMatching(test: (text: string) => boolean): Promise<string>;
  /**
   * Keeps the session open after the tool call returns, until `pending` settles: closing a session
   * whose statement waits for approval would withdraw the request before anyone could approve it.
   */
  keepOpenUntil(pending: Promise<unknown>): void;
}

/** Opens sessions to the proxy over one wire protocol. */
export interface ProxyClient {
  readonly dialect: ToolDialect;
  /**
   * Runs `run` on a fresh session named for `tool` (the audit's `application`: `gatehouse-mcp/TOOL`);
   * it is closed afterwards, so nothing carries over from one tool call to the next.
   */
  withSession<T>(tool: McpTool, run: (session: ProxySession) => Promise<T>): Promise<T>;
  /**
   * The tools the agent may call, when the proxy can say (in process); undefined over TCP, where
   * every tool is listed and the proxy's grants decide each statement.
   */
  toolsAllowed(): Promise<ReadonlySet<McpTool> | undefined>;
}

/** What `toolsAllowed` is for either protocol's client. */
export function toolsAllowed(
  route: ProxyRoute,
  credentials: AgentCredentials,
): Promise<ReadonlySet<McpTool> | undefined> {
  if (!isInProcess(route)) return Promise.resolve(undefined);
  let login: { user: string; password: string };
  try {
    login = loginOf(credentials);
  } catch {
    // A token file that cannot be read: each call says so.
    return Promise.resolve(undefined);
  }
  return route.toolsFor(credentials.kind === 'pod' ? { user: login.user } : login);
}

/** The proxy (or the network) refused the agent's connection: no statement was sent. */
export class ProxyLoginError extends Error {
  override readonly name = 'ProxyLoginError';
  readonly sqlstate: string | undefined;
  /** Refused by policy (a tool no DatabaseAccess grants): sending it again gets the same answer. */
  readonly policy: boolean;

  constructor(message: string, sqlstate: string | undefined, policy = false) {
    super(message);
    this.sqlstate = sqlstate;
    this.policy = policy;
  }
}

export function sqlstateOf(code: unknown): string | undefined {
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** The user name and password a login sends: in token modes the token is the password, re-read for rotation. */
export function loginOf(credentials: AgentCredentials): { user: string; password: string } {
  if (credentials.kind === 'local') return { user: credentials.user, password: credentials.password };
  if (credentials.kind === 'pod') return { user: 'mcp-agent', password: '' };
  const token = credentials.kind === 'token' ? credentials.token : readToken(credentials.path);
  // The user name is ignored in token modes.
  return { user: 'mcp-agent', password: token };
}

function readToken(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new UserError(`--token-file ${path} cannot be read (${(error as NodeJS.ErrnoException).code})`);
  }
}
