import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeMysql } from '../../sql/mysql/analyze-mysql.ts';
import { loadMysqlParser } from '../../sql/mysql/parser.ts';
import { PayloadWriter } from './packet-io.ts';
import {
  buildTableCatalog,
  counterValue,
  needsCount,
  outsideTransaction,
  unmeasurable,
  withStatus,
} from './row-measure.ts';

beforeAll(async () => {
  await loadMysqlParser();
});

const facts = (sql: string) => analyzeMysql(sql, { sqlMode: null });

const CATALOG = buildTableCatalog(
  [
    ['app', 't', 'YES'],
    ['app', 'parent', 'YES'],
    ['app', 'child', 'YES'],
    ['app', 'my', 'NO'],
    ['other', 'mem', 'NO'],
  ],
  [['app', 'parent']],
);

describe('counterValue', () => {
  it('reads the text row of the counter query', () => {
    expect(counterValue(new PayloadWriter().lenencBytes('12345').build())).toBe(12345);
    expect(counterValue(new PayloadWriter().lenencBytes('0').build())).toBe(0);
  });
  it('gives nothing for NULL or anything but digits', () => {
    expect(counterValue(Buffer.from([0xfb]))).toBeUndefined();
    for (const text of ['', '-1', '1e3', '12.5', 'x', '9'.repeat(20)])
      expect(counterValue(new PayloadWriter().lenencBytes(text).build()), text).toBeUndefined();
  });
});

describe('withStatus', () => {
  it('sets the status flags of an OK packet, whatever its lengths', () => {
    const ok = new PayloadWriter().u8(0).lenenc(300).lenenc(0).u16(0x0003).u16(0).build();
    const patched = withStatus(ok, outsideTransaction(0x0003));
    expect(patched.readUInt16LE(patched.length - 4)).toBe(0x0002);
    expect(ok.readUInt16LE(ok.length - 4)).toBe(0x0003);
  });
  it('sets those of an EOF packet and of an OK that ends rows (0xFE header)', () => {
    const eof = Buffer.from([0xfe, 0, 0, 0x03, 0x00]);
    expect(withStatus(eof, 0x0002).readUInt16LE(3)).toBe(0x0002);
    const okEof = new PayloadWriter().u8(0xfe).lenenc(0).lenenc(0).u16(0x0023).u16(0).build();
    expect(withStatus(okEof, 0x0022).readUInt16LE(3)).toBe(0x0022);
  });
});

describe('needsCount', () => {
  it.each([
    'DELETE FROM t WHERE id != -1',
    'UPDATE t SET x = 1 WHERE id = 1',
    'REPLACE INTO t SELECT * FROM t',
    'INSERT INTO t SELECT * FROM t ON DUPLICATE KEY UPDATE x = 1',
    'CALL p()',
    'TRUNCATE t',
    'DROP TABLE t',
    'ALTER TABLE t MODIFY x int NOT NULL',
  ])('counts %s', (sql) => {
    expect(needsCount(facts(sql))).toBe(true);
  });
  it.each([
    'CREATE PROCEDURE p() BEGIN DELETE FROM t; END',
    'CREATE TRIGGER g AFTER DELETE ON t FOR EACH ROW DELETE FROM child',
    'CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t',
    'CREATE TABLE z (a int)',
    'SELECT 1',
  ])('does not count %s, which changes no existing row now', (sql) => {
    expect(needsCount(facts(sql))).toBe(false);
  });
});

describe('unmeasurable', () => {
  it('lets writes to transactional tables be counted', () => {
    for (const sql of ['DELETE FROM t WHERE id > 0', 'UPDATE app.t SET x = 1', 'DELETE FROM child'])
      expect(unmeasurable(facts(sql), CATALOG, 'app'), sql).toBeUndefined();
  });
  it('refuses non-transactional tables, in any schema', () => {
    expect(unmeasurable(facts('DELETE FROM my WHERE id = 1'), CATALOG, 'app')?.reason).toMatch(
      /not transactional/,
    );
    expect(unmeasurable(facts('UPDATE other.mem SET a = 1'), CATALOG, 'app')?.reason).toMatch(
      /not transactional/,
    );
  });
  it.each([
    'DELETE FROM parent WHERE id = 1',
    'UPDATE parent SET id = 2 WHERE id = 1',
    'REPLACE INTO parent VALUES (1)',
    'INSERT INTO parent VALUES (1) ON DUPLICATE KEY UPDATE id = 2',
    'DELETE parent FROM parent JOIN t ON parent.id = t.id',
  ])('refuses changes to parents of cascading foreign keys: %s', (sql) => {
    expect(unmeasurable(facts(sql), CATALOG, 'app')?.reason).toMatch(/CASCADE/);
  });
  it.each(['INSERT INTO parent VALUES (1)', 'INSERT IGNORE INTO parent SELECT id FROM t'])(
    'lets a plain insert into a parent through (it cascades to nothing): %s',
    (sql) => {
      expect(unmeasurable(facts(sql), CATALOG, 'app')).toBeUndefined();
    },
  );
  it('asks for a reload for a table it does not know, and refuses without a catalog', () => {
    expect(unmeasurable(facts('DELETE FROM fresh WHERE id = 1'), CATALOG, 'app')).toMatchObject({
      unknown: true,
    });
    expect(unmeasurable(facts('DELETE FROM t WHERE id = 1'), undefined, 'app')?.reason).toMatch(/catalog/);
  });
  it.each([
    'DELETE FROM t WHERE id = 1; COMMIT',
    'BEGIN; DELETE FROM t WHERE id = 1',
    'DELETE FROM t WHERE id = 1; CREATE TABLE z (a int)',
    'SET autocommit = 1; DELETE FROM t WHERE id = 1',
    'DELETE FROM t WHERE id = 1; LOCK TABLES t WRITE',
    'TRUNCATE t',
  ])('refuses %s, which commits before the count', (sql) => {
    expect(unmeasurable(facts(sql), CATALOG, 'app')?.reason).toMatch(/ends or commits/);
  });
});
