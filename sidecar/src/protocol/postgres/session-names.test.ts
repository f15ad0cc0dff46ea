import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../../sql/normalize.ts';
import { isNameRefusal, SessionNames, sqlNameEffects } from './session-names.ts';

beforeAll(async () => {
  await loadSqlParser();
});

describe('sqlNameEffects', () => {
  it.each([
    ['SELECT 1', []],
    ['PREPARE "Sp" AS SELECT 1', [{ prepares: 'Sp' }]],
    ['prepare SP as select 1', [{ prepares: 'sp' }]],
    ['DEALLOCATE sp', [{ deallocates: 'sp' }]],
    ['DEALLOCATE PREPARE ALL', [{ deallocates: null }]],
    ['DECLARE c CURSOR FOR SELECT 1', [{ declares: { name: 'c', holdable: false } }]],
    ['DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT 1', [{ declares: { name: 'c', holdable: true } }]],
    ['CLOSE c', [{ closes: 'c' }]],
    ['CLOSE ALL', [{ closes: null }]],
    ['DISCARD ALL', [{ deallocates: null, closes: null }]],
    ['DISCARD PLANS', [undefined]],
    ['FETCH 10 FROM c', [{ fetches: 'c' }]],
    ['MOVE LAST IN c', [{ fetches: 'c' }]],
    [
      'BEGIN; COMMIT; ROLLBACK TO SAVEPOINT s; ROLLBACK; END; ABORT; PREPARE TRANSACTION $$x$$',
      [
        undefined,
        { endsTransaction: true },
        undefined,
        { endsTransaction: true },
        { endsTransaction: true },
        { endsTransaction: true },
        { endsTransaction: true },
      ],
    ],
  ])('%s', (sql, effects) => {
    expect(sqlNameEffects(sql)).toEqual(effects);
  });
});

describe('SessionNames', () => {
  it('refuses protocol use of SQL-made names and SQL reuse of names in use', () => {
    const names = new SessionNames<string, string>();
    names.admitSql(sqlNameEffects('PREPARE sp AS SELECT 1'));
    expect(isNameRefusal(names.statement('sp'))).toBe(true);
    expect(names.sqlConflict(sqlNameEffects('PREPARE sp AS SELECT 2'))?.code).toBe('42P05');
    expect(names.parse('sp', 'x').refusal?.code).toBe('42P05');
    names.parse('own', 'text');
    expect(names.statement('own')).toBe('text');
    expect(names.sqlConflict(sqlNameEffects('PREPARE own AS SELECT 2'))?.code).toBe('42P05');
  });

  it('holds a redefined name until the server answers, and restores it on failure', () => {
    const names = new SessionNames<string, string>();
    names.parse('s', 'first');
    const second = names.parse('s', 'second');
    expect(isNameRefusal(names.statement('s'))).toBe(true);
    second.undo?.();
    expect(names.statement('s')).toBe('first');
    names.parse('s', 'third').done?.();
    expect(names.statement('s')).toBe('third');
  });

  it('removes names only when the server ran what removes them', () => {
    const names = new SessionNames<string, string>();
    const [effect] = sqlNameEffects('DEALLOCATE sp');
    names.admitSql(sqlNameEffects('PREPARE sp AS SELECT 1'));
    expect(names.sqlConflict(sqlNameEffects('PREPARE sp AS SELECT 2'))).toBeDefined();
    names.completedSql(effect, names.stamp(), 'DEALLOCATE');
    expect(names.sqlConflict(sqlNameEffects('PREPARE sp AS SELECT 2'))).toBeUndefined();
  });

  it('ends portals and cursors with their transaction, and WITH HOLD ones only when rolled back', () => {
    const names = new SessionNames<string, string>();
    names.admitSql(sqlNameEffects('DECLARE a CURSOR FOR SELECT 1'));
    names.admitSql(sqlNameEffects('DECLARE h CURSOR WITH HOLD FOR SELECT 1'));
    names.bind('p', 'portal');
    const [commit] = sqlNameEffects('COMMIT');
    names.completedSql(commit, names.stamp(), 'COMMIT');
    expect(names.sqlConflict(sqlNameEffects('DECLARE a CURSOR FOR SELECT 1'))).toBeUndefined();
    expect(names.sqlConflict(sqlNameEffects('DECLARE h CURSOR FOR SELECT 1'))).toBeDefined();
    expect(isNameRefusal(names.portal('p'))).toBe(true);
    names.admitSql(sqlNameEffects('DECLARE r CURSOR WITH HOLD FOR SELECT 1'));
    const [rollback] = sqlNameEffects('ROLLBACK');
    names.completedSql(rollback, names.stamp(), 'ROLLBACK');
    expect(names.sqlConflict(sqlNameEffects('DECLARE r CURSOR FOR SELECT 1'))).toBeUndefined();
    expect(names.sqlConflict(sqlNameEffects('DECLARE h CURSOR FOR SELECT 1'))).toBeDefined();
  });

  it('keeps what is made after the Sync a ReadyForQuery answers', () => {
    const names = new SessionNames<string, string>();
    names.bind('before', 'x');
    names.synced(false);
    names.bind('after', 'y');
    names.ready('I');
    expect(isNameRefusal(names.portal('before'))).toBe(true);
    expect(names.portal('after')).toBe('y');
  });
});
