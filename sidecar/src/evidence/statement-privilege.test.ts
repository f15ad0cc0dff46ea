import { describe, expect, it } from 'vitest';
import { statementPrivilege } from './statement-privilege.ts';

describe('statementPrivilege', () => {
  it.each([
    ['CREATE TABLE t (id int)', 'CREATE TABLE', 'ddl'],
    ['  alter table t add column c int', null, 'ddl'],
    ['DROP TABLE orders', null, 'ddl'],
    ['TRUNCATE orders', 'TRUNCATE TABLE', 'ddl'],
    ['GRANT SELECT ON t TO bob', 'GRANT', 'ddl'],
    ['revoke all on t from bob', null, 'ddl'],
    ['COMMENT ON TABLE t IS $1', null, 'ddl'],
    ['RENAME TABLE a TO b', null, 'ddl'],
    ['VACUUM orders', 'VACUUM', 'admin'],
    ['SET ROLE postgres', 'SET', 'admin'],
    ['set session authorization bob', 'SET', 'admin'],
    ['SET LOCAL ROLE admin', 'SET', 'admin'],
    ['RESET ROLE', 'RESET', 'admin'],
    ['DO $1', 'DO', 'admin'],
    ['KILL $1', null, 'admin'],
    ['SELECT * FROM customers', 'SELECT', undefined],
    ['SET search_path = $1', 'SET', undefined],
    ['SET rolex = $1', 'SET', undefined],
    ['INSERT INTO t VALUES ($1)', 'INSERT', undefined],
    ['WITH x AS (SELECT 1) SELECT * FROM x', 'SELECT', undefined],
    [null, 'CREATE TABLE', 'ddl'],
    [null, null, undefined],
  ] as const)('%s (command %s) is %s', (statement, command, expected) => {
    expect(statementPrivilege(statement, command)).toBe(expected);
  });
});
