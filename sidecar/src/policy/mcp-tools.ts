import { MCP_TOOLS, type McpTool, type StatementClass } from '../../../crds/database-access.ts';
import type { Identity } from '../identity/identity.ts';
import { grantsFor } from './grants-for.ts';
import type { Grant, Policy } from './load-policy.ts';

export { MCP_TOOLS, type McpTool };

/** The tools that only read: what `allow: [read]` lets a grant's subjects call when it lists none. */
const READING_TOOLS: readonly McpTool[] = ['list_tables', 'describe_table', 'query', 'explain'];

/**
 * The statement classes a call of `tool` may need, whatever the grants allow: the reading tools
 * promise reads (EXPLAIN without ANALYZE is a read), so a session the proxy knows is one of their
 * calls runs nothing else, even if the MCP server's own checks let something through. Undefined:
 * the grants alone decide (execute).
 */
export function toolClasses(tool: McpTool): readonly StatementClass[] | undefined {
  return READING_TOOLS.includes(tool) ? ['read'] : undefined;
}

export function isMcpTool(name: string): name is McpTool {
  return (MCP_TOOLS as readonly string[]).includes(name);
}

/**
 * The tools one grant lets its subjects call: its `spec.mcp.tools` when it lists them, otherwise
 * what its `allow` classes already permit, so a grant written before the field existed neither gains
 * nor loses anything: `read` gives the reading tools, any class that changes something gives
 * `execute` (which a read-only grant could only ever have had refused).
 */
export function grantTools(grant: Grant): ReadonlySet<McpTool> {
  const listed = grant.access.spec.mcp?.tools;
  if (listed !== undefined) return new Set(listed);
  const allow = grant.access.spec.allow;
  return new Set([
    ...(allow.includes('read') ? READING_TOOLS : []),
    ...(allow.some((c) => c !== 'read') ? (['execute'] as const) : []),
  ]);
}

/**
 * The tools `identity` may call on `database`: grants add up, as they do for statements. Without a
 * policy the proxy judges nothing, tools included.
 */
export function toolsFor(identity: Identity, policy: Policy | undefined, database: string): Set<McpTool> {
  if (!policy) return new Set(MCP_TOOLS);
  return new Set(grantsFor(identity, policy, database).flatMap((grant) => [...grantTools(grant)]));
}

/** Why a call of `tool` is refused to `identity`, for the client and the audit; undefined when granted. */
export function toolRefusal(
  tool: McpTool,
  identity: Identity,
  policy: Policy | undefined,
  database: string,
): string | undefined {
  const tools = toolsFor(identity, policy, database);
  if (tools.has(tool)) return undefined;
  const granted = MCP_TOOLS.filter((t) => tools.has(t));
  return (
    `no DatabaseAccess grants ${identity.subject} the MCP tool ${tool} on database "${database}" ` +
    `(spec.mcp.tools, or by default the tools its allow classes permit); it may call ${
      granted.length > 0 ? granted.join(', ') : 'no tool'
    }`
  );
}
