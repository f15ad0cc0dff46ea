import type { Node } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../normalize.ts';
import { parseTree } from '../parse-tree.ts';
import { mayFail } from './total-expressions.ts';

beforeAll(loadSqlParser);

/** The first target expression of `SELECT <expr>`. */
function expressionOf(text: string): Node {
  const stmts = parseTree(`SELECT ${text} FROM t`);
  if (typeof stmts === 'string') throw new Error(`${text}: ${stmts}`);
  const select = (stmts[0]!.stmt as { SelectStmt: { targetList: { ResTarget: { val: Node } }[] } })
    .SelectStmt;
  return select.targetList[0]!.ResTarget.val;
}

describe('mayFail: whether evaluating an expression can fail, wait or have effects', () => {
  it.each([
    ['c', false],
    ["'x'", false],
    ['$1', false],
    ['current_user', false],
    ['lower(c)', false],
    ["concat(c, 'x', upper(d))", false],
    ["split_part(c, '@', 1)", true],
    ['c::text', false],
    ['c::varchar(3)', false],
    ["c || 'x' = 'y'", false],
    ['c IS NULL', false],
    ["coalesce(c, lower(d), 'z')", false],
    ["c LIKE 'a%'", true],
    ["c = 'a'", false],
    ['now()', true],
    ['c::int', true],
    ['c::text[]', true],
    ['1/0', true],
    ['c + 1', true],
    ["'a' LIKE c", true],
    ["'a' ~ c", true],
    ["split_part(c, '@', n)", true],
    ['repeat(c, n)', true],
    ['generate_series(1, 3)', true],
    ['pg_sleep(1)', true],
    ['public.lower(c)', true],
    ['count(DISTINCT c)', true],
    ['(SELECT 1)', true],
    ['CASE WHEN c THEN 1 END', true],
    ['lower(c::int::text)', true],
  ])('%s → %s', (text, expected) => {
    expect(mayFail(expressionOf(text))).toBe(expected);
  });
});
