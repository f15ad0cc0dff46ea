import { readFileSync } from 'node:fs';
import mysql2 from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { analyzeMysql } from './analyze-mysql.ts';
import { loadMysqlParser } from './parser.ts';
import { DEFAULT_SQL_MODE } from './sql-mode.ts';

/*
 * Effective WHERE against the real server: whenever Gatehouse lets a DELETE through as restricted,
 * the same WHERE must leave out some row of a small table on MariaDB. (The converse, refusing a
 * restrictive WHERE, is allowed: the judgement is conservative.)
 */
const mariadb = inject('mariadb');
const TABLE = `gh_where_${process.pid}`;
let connection: mysql2.Connection;

beforeAll(async () => {
  await loadMysqlParser();
  connection = await mysql2.createConnection({
    host: mariadb.host,
    port: mariadb.port,
    user: mariadb.users.native.user,
    password: mariadb.users.native.password,
    database: mariadb.database,
    ssl: { ca: readFileSync(mariadb.caFile), rejectUnauthorized: true },
  });
  await connection.query(`CREATE TABLE ${TABLE} (id int, email text, flag int)`);
  await connection.query(
    `INSERT INTO ${TABLE} VALUES (1, 'a@x', 0), (2, 'b@x', 1), (3, NULL, 1), (4, 'd@x', NULL), (5, 'e@x', 2)`,
  );
});

afterAll(async () => {
  await connection?.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await connection?.end();
});

const ATOMS = [
  'id = 1',
  'id = id',
  '1',
  '0',
  'true',
  'NULL',
  "'a' = 'a'",
  'id IS NOT NULL',
  'email IS NULL',
  'id > 3',
  "email LIKE '%'",
  "email LIKE 'a%'",
  'id IN (1, 2)',
  'id IN (id)',
  'flag',
  'id <=> id',
  'id BETWEEN 2 AND 3',
  '2',
  'id = 1 = 1',
  'id LIKE 1 = 0',
  // Rows that do not exist: a predicate matching only them must not pass for one that matches nothing.
  'id = 6 XOR 1',
  'id = 6 || 1',
  'id = 6 && 1',
  'id = 6 IS NOT TRUE',
  'email = 6 OR id',
];
const JOINERS = [' AND ', ' OR ', ' XOR ', ' && ', ' || '];

function predicates(seed: number, count: number): string[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
  const make = (depth: number): string => {
    const roll = next(depth > 2 ? 1 : 4);
    if (roll === 0) return ATOMS[next(ATOMS.length)]!;
    if (roll === 1) return `NOT (${make(depth + 1)})`;
    if (roll === 2) return `(${make(depth + 1)})`;
    return make(depth + 1) + JOINERS[next(JOINERS.length)] + make(depth + 1);
  };
  return [...ATOMS, ...Array.from({ length: count }, () => make(0))];
}

describe('a WHERE Gatehouse judges effective leaves rows out on MariaDB', () => {
  it('holds for single predicates and 400 generated combinations', async () => {
    const [[{ total }]] = (await connection.query(`SELECT COUNT(*) AS total FROM ${TABLE}`)) as unknown as [
      [{ total: number }],
    ];
    let effective = 0;
    for (const predicate of predicates(7, 400)) {
      const facts = analyzeMysql(`DELETE FROM ${TABLE} WHERE ${predicate}`, { sqlMode: DEFAULT_SQL_MODE });
      if (facts.findings.length > 0) continue;
      effective++;
      const [[{ matched }]] = (await connection.query(
        `SELECT COUNT(*) AS matched FROM ${TABLE} WHERE ${predicate}`,
      )) as unknown as [[{ matched: number }]];
      expect({ predicate, allRows: Number(matched) === Number(total) }).toEqual({
        predicate,
        allRows: false,
      });
    }
    expect(effective).toBeGreaterThan(20);
  });
});
