import { beforeAll, describe, expect, it } from 'vitest';
import { loadMysqlParser } from '../../sql/mysql/parser.ts';
import { createMysqlGate } from './mysql-gate.ts';

const identity = { subject: 'local:demo', groups: [], method: 'local' as const };
const gate = (sqlMode: string | null = '') =>
  createMysqlGate({ policy: () => undefined, identity, database: 'app', sqlMode, code: () => undefined });

beforeAll(async () => {
  await loadMysqlParser();
});

describe('MysqlGate.localInfiles', () => {
  it.each([
    ["LOAD DATA LOCAL INFILE '/tmp/a.csv' INTO TABLE t", ['/tmp/a.csv']],
    ["load data low_priority local infile 'x\\'y.csv' into table t", ["x'y.csv"]],
    ["/*!LOAD DATA LOCAL INFILE 'c.csv' INTO TABLE t */", ['c.csv']],
    ["LOAD DATA INFILE '/srv/a.csv' INTO TABLE t", []],
    ["SELECT 'LOAD DATA LOCAL INFILE x'", []],
    [
      "LOAD XML LOCAL INFILE 'a.xml' INTO TABLE t; LOAD DATA LOCAL INFILE 'b.csv' INTO TABLE u",
      ['a.xml', 'b.csv'],
    ],
  ])('%s names %j', (sql, files) => {
    expect(gate().localInfiles(sql)).toEqual(files);
  });

  it('allows no upload when the sql_mode cannot be told, or the text cannot be read', () => {
    expect(gate(null).localInfiles("LOAD DATA LOCAL INFILE 'a' INTO TABLE t")).toEqual([]);
    expect(gate().localInfiles("LOAD DATA LOCAL INFILE 'unterminated")).toEqual([]);
  });

  it('reads the file name as the server does under NO_BACKSLASH_ESCAPES', () => {
    expect(
      gate('NO_BACKSLASH_ESCAPES').localInfiles("LOAD DATA LOCAL INFILE 'C:\\new.csv' INTO TABLE t"),
    ).toEqual(['C:\\new.csv']);
  });
});
