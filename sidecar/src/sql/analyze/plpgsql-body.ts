import { parsePlPgSQLSync, scanSync } from 'libpg-query';
import { isObject, list } from './ast.ts';

/** What a PL/pgSQL body holds, handed to the caller piece by piece. */
export interface PlpgsqlVisitor {
  /** An SQL statement the body runs as written (`DELETE ...`, `PERFORM ...`, a FOR loop's query). */
  statement(sql: string): void;
  /** An expression it evaluates (IF conditions, assignments, RAISE arguments...). */
  expression(sql: string): void;
  /** An expression whose value is run as SQL: EXECUTE, FOR ... IN EXECUTE, OPEN ... FOR EXECUTE. */
  dynamic(expression: string): void;
}

/**
 * Parses the PL/pgSQL of a DO block or a CREATE FUNCTION/PROCEDURE statement (the whole statement
 * text) and visits everything in it that PostgreSQL would parse as SQL. Returns false when the body
 * does not parse.
 */
export function visitPlpgsql(statementText: string, visitor: PlpgsqlVisitor): boolean {
  let tree: unknown;
  try {
    tree = parsePlPgSQLSync(statementText);
  } catch {
    // Unknown variables, bad syntax: PostgreSQL would refuse the body too.
    return false;
  }
  const functions = isObject(tree) ? list(tree['plpgsql_funcs']) : [];
  if (functions.length === 0) return false;
  walk(tree, visitor);
  return true;
}

/** Statement nodes whose `query`/`dynquery` expression is run as SQL text. */
const DYNAMIC_FIELDS: Record<string, string> = {
  PLpgSQL_stmt_dynexecute: 'query',
  PLpgSQL_stmt_dynfors: 'query',
  PLpgSQL_stmt_open: 'dynquery',
  PLpgSQL_stmt_return_query: 'dynquery',
};

/**
 * Transaction control in a procedure or DO body: no SQL text of its own, but it ends the transaction
 * mid-body, which row limits must know (what was changed before it is committed unmeasured).
 */
const TRANSACTION_CONTROL: Record<string, string> = {
  PLpgSQL_stmt_commit: 'COMMIT',
  PLpgSQL_stmt_rollback: 'ROLLBACK',
};

function walk(value: unknown, visitor: PlpgsqlVisitor): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visitor);
    return;
  }
  if (!isObject(value)) return;
  for (const key in value) {
    const child = value[key];
    if (key === 'PLpgSQL_expr' && isObject(child)) {
      expression(child, visitor);
      continue;
    }
    const control = TRANSACTION_CONTROL[key];
    if (control) visitor.statement(control);
    const dynamicField = DYNAMIC_FIELDS[key];
    if (dynamicField && isObject(child)) {
      const expr = isObject(child[dynamicField]) ? child[dynamicField]['PLpgSQL_expr'] : undefined;
      if (isObject(expr) && typeof expr['query'] === 'string') visitor.dynamic(expr['query']);
    }
    walk(child, visitor);
  }
}

/** libpg_query's RawParseMode numbers for PLpgSQL_expr.parseMode. */
const PARSE_DEFAULT = 0;
const PARSE_EXPRESSION = 2;
const PARSE_ASSIGNMENTS = new Set([3, 4, 5]);

function expression(expr: Record<string, unknown>, visitor: PlpgsqlVisitor): void {
  const query = expr['query'];
  if (typeof query !== 'string') return;
  const mode = typeof expr['parseMode'] === 'number' ? expr['parseMode'] : PARSE_DEFAULT;
  if (mode === PARSE_DEFAULT) visitor.statement(query);
  else if (mode === PARSE_EXPRESSION) visitor.expression(query);
  else if (PARSE_ASSIGNMENTS.has(mode)) {
    const split = splitAssignment(query);
    if (!split) visitor.expression(query);
    else {
      // Subscripts of the target are expressions too: `a[f(x)] := 1`.
      if (split.target.includes('[')) visitor.expression(split.target);
      visitor.expression(split.value);
    }
  }
}

/** `target := value` (or `=`) → its two sides, split at the first top-level assignment token. */
function splitAssignment(text: string): { target: string; value: string } | undefined {
  let tokens: readonly { start: number; end: number; text: string }[];
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return undefined;
  }
  let depth = 0;
  for (const token of tokens) {
    if (token.text === '[' || token.text === '(') depth++;
    else if (token.text === ']' || token.text === ')') depth--;
    else if (depth === 0 && (token.text === ':=' || token.text === '=')) {
      const bytes = Buffer.from(text, 'utf8');
      return {
        target: bytes.toString('utf8', 0, token.start),
        value: bytes.toString('utf8', token.end),
      };
    }
  }
  return undefined;
}
