import { beforeAll, describe, expect, it } from 'vitest';
import { policyDocument } from '../../../test/support/policy-documents.ts';
import type { Identity } from '../identity/identity.ts';
import { analyzeStatement } from '../sql/analyze/analyze-statement.ts';
import { analyzeMysql } from '../sql/mysql/analyze-mysql.ts';
import { loadMysqlParser } from '../sql/mysql/parser.ts';
import { loadSqlParser } from '../sql/normalize.ts';
import { decide } from './guardrails/decide.ts';
import { loadPolicyDocuments, PolicyError } from './load-policy.ts';
import { grantTools, MCP_TOOLS, type McpTool, toolClasses, toolRefusal, toolsFor } from './mcp-tools.ts';

const agent: Identity = { subject: 'local:agent', groups: ['agents'], method: 'local' };
const READING = ['list_tables', 'describe_table', 'query', 'explain'];

function access(name: string, spec: Record<string, unknown>) {
  return policyDocument('DatabaseAccess', name, {
    subjects: [{ kind: 'User', name: 'local:agent' }],
    ...spec,
  });
}

function policyOf(...docs: unknown[]) {
  return loadPolicyDocuments(docs, 'policy.yaml');
}

describe('grantTools', () => {
  it.each<[string, Record<string, unknown>, readonly string[]]>([
    // Absent: what the statement classes already permit, so no existing grant gains or loses anything.
    ['read: the reading tools', { allow: ['read'] }, READING],
    ['read and write: every tool', { allow: ['read', 'write'] }, MCP_TOOLS],
    ['write alone: execute', { allow: ['write'] }, ['execute']],
    ['ddl: execute', { allow: ['ddl'] }, ['execute']],
    ['admin with read: every tool', { allow: ['read', 'admin'] }, MCP_TOOLS],
    // Listed: exactly those, whatever the classes.
    [
      'listed tools only',
      { allow: ['read', 'write'], mcp: { tools: ['query', 'list_tables'] } },
      ['list_tables', 'query'],
    ],
    ['execute listed on a read grant', { allow: ['read'], mcp: { tools: ['execute'] } }, ['execute']],
    ['an empty list: none', { allow: ['read', 'write'], mcp: { tools: [] } }, []],
    ['an mcp section without tools: the default', { allow: ['read'], mcp: {} }, READING],
  ])('%s', (_name, spec, expected) => {
    const grant = policyOf(access('agent', spec)).grants[0]!;
    expect([...grantTools(grant)].sort()).toEqual([...expected].sort());
  });
});

describe('toolsFor and toolRefusal', () => {
  it('adds up the tools of every grant that names the identity', () => {
    const policy = policyOf(
      access('reads', { allow: ['read', 'write'], mcp: { tools: ['query'] } }),
      access('plans', { allow: ['read'], mcp: { tools: ['explain'] } }),
      policyDocument('DatabaseAccess', 'others', {
        subjects: [{ kind: 'User', name: 'local:someone-else' }],
        allow: ['read', 'write'],
      }),
    );
    expect([...toolsFor(agent, policy, 'shop')].sort()).toEqual(['explain', 'query']);
    expect(toolRefusal('query', agent, policy, 'shop')).toBeUndefined();
    expect(toolRefusal('execute', agent, policy, 'shop')).toBe(
      'no DatabaseAccess grants local:agent the MCP tool execute on database "shop" (spec.mcp.tools, or by default the tools its allow classes permit); it may call query, explain',
    );
  });

  it('counts only the grants of this database', () => {
    const policy = policyOf(
      access('orders', { allow: ['read', 'write'], upstream: { host: 'db', database: 'orders' } }),
      access('shop', { allow: ['read'], upstream: { host: 'db', database: 'shop' } }),
    );
    expect(toolsFor(agent, policy, 'shop').has('execute')).toBe(false);
    expect(toolsFor(agent, policy, 'orders').has('execute')).toBe(true);
  });

  it.each<McpTool>([...MCP_TOOLS])(
    'refuses %s to an identity no grant names, and to one granted none',
    (tool) => {
      const stranger: Identity = { subject: 'local:stranger', groups: [], method: 'local' };
      const policy = policyOf(access('none', { allow: ['read', 'write'], mcp: { tools: [] } }));
      expect(toolRefusal(tool, stranger, policy, 'shop')).toMatch(/it may call no tool$/);
      expect(toolRefusal(tool, agent, policy, 'shop')).toContain(`the MCP tool ${tool} `);
    },
  );

  it('refuses no tool where the proxy runs without a policy, as it judges no statement there', () => {
    expect([...toolsFor(agent, undefined, 'shop')]).toEqual([...MCP_TOOLS]);
  });
});

describe('spec.mcp.tools in the policy loader', () => {
  it.each<[unknown, string]>([
    [['query', 'drop_table'], 'spec.mcp.tools[1]'],
    ['query', 'spec.mcp.tools'],
  ])('refuses %j, naming the field', (tools, field) => {
    try {
      policyOf(access('agent', { allow: ['read'], mcp: { tools } }));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PolicyError);
      expect((error as PolicyError).problems[0]!.field).toBe(field);
    }
  });

  it('refuses an unknown field of spec.mcp', () => {
    expect(() => policyOf(access('agent', { allow: ['read'], mcp: { tool: ['query'] } }))).toThrow(
      /spec\.mcp\.tool: is not a known field/,
    );
  });
});

describe('a session the proxy knows is a call of a reading tool', () => {
  beforeAll(async () => {
    await loadSqlParser();
    await loadMysqlParser();
  });
  // Grants that allow every class: only the tool's own promise can refuse.
  const policy = policyOf(access('all', { allow: ['read', 'write', 'ddl', 'admin'] }));
  const WRITES = [
    'DELETE FROM customers WHERE id = 1',
    'SELECT 1; DELETE FROM customers',
    'UPDATE customers SET email = NULL',
    'INSERT INTO customers VALUES (1)',
    'DROP TABLE customers',
    'TRUNCATE customers',
    'CREATE TABLE t (id int)',
  ];
  const PG_WRITES = [
    ...WRITES,
    'WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d',
    'EXPLAIN ANALYZE DELETE FROM customers',
  ];
  const READS = ['SELECT * FROM customers', 'EXPLAIN DELETE FROM customers', 'SHOW search_path'];

  const reading = MCP_TOOLS.filter((t) => t !== 'execute');
  it.each(reading.flatMap((tool) => PG_WRITES.map((sql) => [tool, sql] as const)))(
    'PostgreSQL: %s refuses %s, whatever the grants allow',
    (tool, sql) => {
      const decision = decide(analyzeStatement(sql), agent, policy, {
        database: 'shop',
        tool: { name: tool, classes: toolClasses(tool)! },
      });
      expect(decision).toMatchObject({ outcome: 'refuse', rule: 'mcp-tool', sqlstate: '42501' });
      expect(decision.outcome === 'refuse' && decision.message).toMatch(
        new RegExp(`^Gatehouse: the MCP tool ${tool} runs read only, and .* needs (write|ddl|admin)`),
      );
    },
  );

  it.each(reading.flatMap((tool) => WRITES.map((sql) => [tool, sql] as const)))(
    'MySQL: %s refuses %s, whatever the grants allow',
    (tool, sql) => {
      const decision = decide(analyzeMysql(sql, { sqlMode: null }), agent, policy, {
        database: 'shop',
        tool: { name: tool, classes: toolClasses(tool)! },
      });
      expect(decision).toMatchObject({ outcome: 'refuse', rule: 'mcp-tool' });
    },
  );

  it.each(reading.flatMap((tool) => READS.map((sql) => [tool, sql] as const)))('%s runs %s', (tool, sql) => {
    const decision = decide(analyzeStatement(sql), agent, policy, {
      database: 'shop',
      tool: { name: tool, classes: toolClasses(tool)! },
    });
    expect(decision.outcome).toBe('allow');
  });

  it('execute is bounded by the grants alone', () => {
    expect(toolClasses('execute')).toBeUndefined();
    expect(
      decide(analyzeStatement('DELETE FROM customers WHERE id = 1'), agent, policy, { database: 'shop' })
        .outcome,
    ).toBe('allow');
  });
});
