import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ListToolsRequestSchema, type ListToolsResult } from '@modelcontextprotocol/sdk/types.js';

type Handler = (request: unknown, extra: unknown) => Promise<unknown>;

/**
 * Lists only the tools `allowed` names (all of them when it cannot say), asked at each listing, so
 * an agent is not offered what its grants refuse. The tools stay registered and enabled: the SDK
 * answers a call of a disabled tool itself, with no reason, before its handler runs, whereas a
 * hidden tool called anyway must reach the proxy, whose refusal says which tool no DatabaseAccess
 * grants. The SDK's own listing (its JSON schemas of the tools) is kept, and filtered.
 */
export function listAllowedToolsOnly(
  server: McpServer,
  allowed: () => Promise<ReadonlySet<string> | undefined>,
): void {
  // The SDK keeps the handler it registered for tools/list in this map (Protocol._requestHandlers).
  const handlers = (server.server as unknown as { _requestHandlers?: Map<string, Handler> })._requestHandlers;
  const listing = handlers?.get(ListToolsRequestSchema.shape.method.value);
  if (!listing)
    throw new Error('the MCP SDK no longer keeps its tools/list handler where Gatehouse reads it');
  server.server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
    const [all, tools] = await Promise.all([listing(request, extra) as Promise<ListToolsResult>, allowed()]);
    return tools ? { ...all, tools: all.tools.filter((tool) => tools.has(tool.name)) } : all;
  });
}
