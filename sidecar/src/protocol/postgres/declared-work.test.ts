import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../../sql/normalize.ts';
import { declaredWork } from './declared-work.ts';

beforeAll(async () => {
  await loadSqlParser();
});

describe('declaredWork', () => {
  it.each([
    ["SET gatehouse.purpose = 'train churn'", 'purpose', 'train churn'],
    ["set gatehouse.purpose to 'train churn'", 'purpose', 'train churn'],
    ["SET SESSION gatehouse.purpose = 'train churn';", 'purpose', 'train churn'],
    ["  SET\n\tGATEHOUSE.PURPOSE = E'train churn'  ", 'purpose', 'train churn'],
    ['SET "gatehouse"."purpose" = \'train churn\'', 'purpose', 'train churn'],
    ["/* ai */ SET gatehouse.run_id = 'run-42'", 'runId', 'run-42'],
    ['SET gatehouse.run_id = 42', 'runId', '42'],
    ['SET gatehouse.run_id TO DEFAULT', 'runId', undefined],
    ['RESET gatehouse.run_id', 'runId', undefined],
  ])('keeps %j', (sql, field, value) => {
    expect(declaredWork(sql)).toEqual({ field, value });
  });

  it.each([
    "SET gatehouse.purpose = 'a'; SELECT 1",
    "SELECT 1; SET gatehouse.run_id = 'r'",
    "SET LOCAL gatehouse.purpose = 'a'",
    "SET gatehouse.purpose = 'a', 'b'",
  ])('refuses %j, which the audit would not see as the client meant', (sql) => {
    expect(declaredWork(sql)).toMatch(/SET gatehouse.purpose/);
  });

  it.each([
    'SELECT 1',
    "SELECT 'gatehouse.purpose'",
    "SET gatehouse.report_masking = 'on'",
    "SET application_name = 'gatehouse'",
    'SET gatehouse.purpose =', // does not parse: the server answers it
  ])('leaves %j to the server', (sql) => {
    expect(declaredWork(sql)).toBeUndefined();
  });
});
