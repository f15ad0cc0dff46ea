import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeStatement } from './analyze/analyze-statement.ts';
import {
  type CodeCatalog,
  type CodeUnit,
  changesStoredCode,
  reachCode,
  withPendingCode,
} from './code-reach.ts';
import { loadSqlParser } from './normalize.ts';

beforeAll(async () => {
  await loadSqlParser();
});

/** Units whose bodies are PostgreSQL text, by name; names not listed are built-ins, `nowhere` is unknown. */
function catalog(bodies: Record<string, string>, triggers: Record<string, string[]> = {}): CodeCatalog {
  const unit = (name: string): CodeUnit => ({
    id: name,
    label: `function ${name}`,
    facts: () => analyzeStatement(bodies[name]!),
  });
  return {
    routine: (name) => (name === 'nowhere' ? undefined : name in bodies ? [unit(name)] : 'builtin'),
    operator: () => [],
    onWrite: (table) => (triggers[table] ?? []).map(unit),
    onRead: () => [],
  };
}

const kinds = (sql: string, code: CodeCatalog) =>
  reachCode(analyzeStatement(sql), code).facts.findings.map((f) => f.kind);

describe('reachCode', () => {
  it('leaves statements that call only built-ins as they are', () => {
    const facts = analyzeStatement('SELECT lower(x), now() FROM t');
    const reached = reachCode(facts, catalog({}));
    expect(reached.facts).toBe(facts);
    expect(reached.code).toEqual([]);
  });

  it.each([
    ['SELECT gh_d()', 'delete-without-where'],
    ['SELECT * FROM t WHERE id = gh_u()', 'update-without-where'],
    ['WITH a AS (SELECT gh_d()) SELECT * FROM a', 'delete-without-where'],
    ['SELECT outer_fn()', 'delete-without-where'],
    ['SELECT gh_exec()', 'dynamic-sql'],
    ['INSERT INTO audited VALUES (1)', 'delete-without-where'],
    ['SELECT nowhere()', 'dynamic-sql'],
  ])('judges %s by the code it reaches (%s)', (sql, kind) => {
    const code = catalog(
      {
        gh_d: 'DELETE FROM v',
        gh_u: "UPDATE v SET x = 'gone'",
        outer_fn: 'SELECT gh_d()',
        gh_exec: "DO $$BEGIN EXECUTE current_setting('x'); END$$",
        wipe: 'DELETE FROM v',
      },
      { audited: ['wipe'] },
    );
    expect(kinds(sql, code)).toContain(kind);
  });

  it('names the code reached, nested statements say where they come from, unknown names are listed', () => {
    const reached = reachCode(
      analyzeStatement('SELECT outer_fn(), nowhere()'),
      catalog({ outer_fn: 'SELECT gh_d()', gh_d: 'DELETE FROM v' }),
    );
    expect(reached.code).toEqual(['function outer_fn', 'function gh_d']);
    expect(reached.unknown).toEqual(['nowhere']);
    const deletion = reached.facts.statements.find((s) => s.kind === 'delete');
    expect(deletion?.via).toEqual(['function outer_fn', 'function gh_d']);
    expect(reached.facts.classes).toEqual(['read', 'write', 'admin']);
  });

  it('follows a function calling itself once, and refuses chains deeper than it follows', () => {
    expect(kinds('SELECT again()', catalog({ again: 'SELECT again()' }))).toEqual([]);
    const chain: Record<string, string> = {};
    for (let i = 0; i < 12; i++) chain[`f${i}`] = `SELECT f${i + 1}()`;
    chain['f12'] = 'SELECT 1';
    expect(kinds('SELECT f0()', catalog(chain))).toContain('dynamic-sql');
  });
});

describe('routines being created', () => {
  it('may call routines created after them (judged where they run), but not known harmful ones', () => {
    const code = catalog({ gh_d: 'DELETE FROM v' });
    expect(kinds("CREATE FUNCTION a() RETURNS int LANGUAGE sql AS 'SELECT nowhere()'", code)).toEqual([]);
    expect(
      kinds(
        'CREATE FUNCTION b() RETURNS int LANGUAGE plpgsql AS $$BEGIN PERFORM gh_d(); RETURN 1; END$$',
        code,
      ),
    ).toContain('delete-without-where');
  });
});

describe('withPendingCode and changesStoredCode', () => {
  it('attaches DDL the catalog cannot show yet to the names it creates', () => {
    const pending = analyzeStatement(
      "CREATE FUNCTION fresh() RETURNS int LANGUAGE sql AS 'DELETE FROM v RETURNING 1'",
    );
    const code = withPendingCode(catalog({}), [pending]);
    expect(kinds('SELECT fresh()', code)).toContain('delete-without-where');
    expect(kinds('SELECT other()', code)).toEqual([]);
  });

  it.each([
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", true],
    ['CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()', true],
    ['ALTER TABLE x ALTER COLUMN y SET DEFAULT f()', true],
    ["DO $$BEGIN EXECUTE 'CREATE VIEW w AS SELECT 1'; END$$", true],
    ['CREATE TEMP TABLE scratch(a int)', false],
    ['SELECT 1', false],
    ['INSERT INTO x VALUES (1)', false],
  ])('%s changes stored code: %s', (sql, expected) => {
    expect(changesStoredCode(analyzeStatement(sql))).toBe(expected);
  });
});
