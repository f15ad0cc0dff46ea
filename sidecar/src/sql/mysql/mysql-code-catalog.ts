import type { StatementFacts } from '../analyze/statement-facts.ts';
import { type CodeCatalog, type CodeUnit, opaqueCall } from '../code-reach.ts';
import { analyzeMysql } from './analyze-mysql.ts';
import { MYSQL_PURE_FUNCTIONS } from './builtins.ts';
import { analyzeMysqlRoutineBody } from './routine-body.ts';
import { DEFAULT_SQL_MODE, parseSqlMode } from './sql-mode.ts';

/**
 * Stored code of a MySQL or MariaDB server, one query each (run at once over one connection): routines
 * with their bodies and the sql_mode they were created under, their parameters, triggers with their
 * bodies, and views with their definitions.
 */
export const MYSQL_CODE_CATALOG_QUERIES: readonly string[] = [
  'SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_BODY, ROUTINE_DEFINITION, SQL_MODE FROM information_schema.ROUTINES',
  'SELECT SPECIFIC_SCHEMA, SPECIFIC_NAME, PARAMETER_NAME FROM information_schema.PARAMETERS WHERE PARAMETER_NAME IS NOT NULL',
  'SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, ACTION_STATEMENT, SQL_MODE FROM information_schema.TRIGGERS',
  'SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS',
];

type Rows = readonly (readonly (string | null)[])[];

/**
 * Built-in functions that are not in the pure list (they read session state, lock, sleep, count rows):
 * an unqualified call of one of these is the server's, since MySQL resolves built-in names before
 * stored functions.
 */
const OTHER_BUILTINS = new Set(
  `last_insert_id connection_id found_rows row_count sleep get_lock release_lock is_free_lock is_used_lock
  release_all_locks master_pos_wait master_gtid_wait schema session_user system_user nextval lastval setval
  json_table cast convert coalesce if ifnull nullif isnull interval match against exists values default
  benchmark charset collation coercibility load_file sys_exec sys_eval uuid uuid_short rand sysdate now
  current_role random_bytes get_format week_of_year json_equals json_normalize json_exists json_query
  column_create column_get column_add column_delete column_exists column_list column_check column_json
  wsrep_last_written_gtid wsrep_last_seen_gtid wsrep_sync_wait_upto_gtid st_astext st_geomfromtext
  group_concat std bit_and bit_or bit_xor count max min sum avg`
    .split(/\s+/)
    .filter(Boolean),
);

export interface MysqlCodeCatalogRows {
  readonly routines: Rows;
  readonly parameters: Rows;
  readonly triggers: Rows;
  readonly views: Rows;
}

interface Routine {
  readonly schema: string;
  readonly name: string;
  readonly type: string;
  readonly language: string;
  readonly definition: string | null;
  readonly sqlMode: string;
}

/**
 * A CodeCatalog over MySQL's stored code. Names compare without case (routine names are
 * case-insensitive; table names may not be, and comparing them without case only finds more code).
 * An unqualified function name that is neither a stored function nor a built-in this module knows is
 * unknown, so a catalog refresh is made before the decision; names that a refresh found to be no
 * stored function (`assumedBuiltins`) are then the server's (a built-in or a loadable function).
 */
export function buildMysqlCodeCatalog(
  rows: MysqlCodeCatalogRows,
  assumedBuiltins: ReadonlySet<string> = new Set(),
): CodeCatalog {
  const parameters = new Map<string, string[]>();
  for (const [schema, name, parameter] of rows.parameters) {
    const key = `${lower(schema)}.${lower(name)}`;
    parameters.set(key, [...(parameters.get(key) ?? []), lower(parameter)]);
  }
  const routines = new Map<string, Routine[]>();
  for (const [schema, name, type, language, definition, sqlMode] of rows.routines) {
    const routine: Routine = {
      schema: schema ?? '',
      name: name ?? '',
      type: type ?? 'FUNCTION',
      language: language ?? 'SQL',
      definition: definition ?? null,
      sqlMode: sqlMode ?? '',
    };
    const key = lower(name);
    routines.set(key, [...(routines.get(key) ?? []), routine]);
  }
  const units = new Map<string, CodeUnit>();
  const once = (id: string, make: () => CodeUnit) => {
    let unit = units.get(id);
    if (!unit) {
      unit = make();
      units.set(id, unit);
    }
    return unit;
  };
  const routineUnit = (r: Routine): CodeUnit => {
    const id = `routine:${lower(r.schema)}.${lower(r.name)}:${r.type}`;
    return once(id, () => {
      const label = `${r.type.toLowerCase()} ${r.schema}.${r.name}`;
      return {
        id,
        label,
        facts: lazy(() => {
          if (r.language !== 'SQL') return opaqueCall(label, `its body is in language ${r.language}`);
          if (r.definition === null)
            return opaqueCall(label, "its body is not visible to Gatehouse's database account");
          return analyzeMysqlRoutineBody(r.definition, modeOf(r.sqlMode), analyzeMysql, {
            parameters: parameters.get(`${lower(r.schema)}.${lower(r.name)}`) ?? [],
          });
        }),
      };
    });
  };

  const triggers = new Map<string, SchemaUnit[]>();
  for (const [schema, name, tableSchema, table, action, sqlMode] of rows.triggers) {
    const id = `trigger:${lower(schema)}.${lower(name)}`;
    const label = `trigger ${schema}.${name} on ${tableSchema}.${table}`;
    const unit: CodeUnit = {
      id,
      label,
      facts: lazy(() =>
        action === null || action === undefined
          ? opaqueCall(label, "its body is not visible to Gatehouse's database account")
          : analyzeMysqlRoutineBody(action, modeOf(sqlMode ?? ''), analyzeMysql, { trigger: true }),
      ),
    };
    const key = lower(table);
    triggers.set(key, [...(triggers.get(key) ?? []), { schema: lower(tableSchema), unit }]);
  }
  const views = new Map<string, { schema: string; unit: CodeUnit; facts: () => StatementFacts }[]>();
  for (const [schema, name, definition] of rows.views) {
    const id = `view:${lower(schema)}.${lower(name)}`;
    const label = `view ${schema}.${name}`;
    const facts = lazy(() =>
      definition === null || definition === undefined
        ? opaqueCall(label, "its definition is not visible to Gatehouse's database account")
        : analyzeMysql(definition, { sqlMode: DEFAULT_SQL_MODE }),
    );
    const key = lower(name);
    views.set(key, [...(views.get(key) ?? []), { schema: lower(schema), unit: { id, label, facts }, facts }]);
  }

  const matching = <T extends { schema: string }>(items: readonly T[] | undefined, written: string) => {
    const parts = written.split('.');
    const schema = parts.length > 1 ? lower(parts.at(-2)) : undefined;
    return (items ?? []).filter((item) => schema === undefined || item.schema === schema);
  };
  const writeUnits = (relation: string, seen: Set<string>): CodeUnit[] => {
    const name = lower(relation.split('.').at(-1) ?? '');
    const out: CodeUnit[] = matching(triggers.get(name), relation).map((t) => t.unit);
    for (const view of matching(views.get(name), relation)) {
      if (seen.has(view.unit.id)) continue;
      seen.add(view.unit.id);
      // Writing through a view writes the tables it reads: their triggers run.
      for (const base of view.facts().tablesRead) out.push(...writeUnits(base, seen));
    }
    return out;
  };

  return {
    routine(written) {
      const parts = written.split('.');
      const name = lower(parts.at(-1));
      const schema = parts.length > 1 ? lower(parts.at(-2)) : undefined;
      const candidates = (routines.get(name) ?? []).filter(
        (r) => schema === undefined || lower(r.schema) === schema,
      );
      if (candidates.length > 0) return candidates.map(routineUnit);
      if (schema !== undefined) return undefined;
      if (MYSQL_PURE_FUNCTIONS.has(name) || OTHER_BUILTINS.has(name) || assumedBuiltins.has(name))
        return 'builtin';
      return undefined;
    },
    operator: () => [],
    onWrite: (relation) => writeUnits(relation, new Set()),
    onRead: (relation) =>
      matching(views.get(lower(relation.split('.').at(-1) ?? '')), relation).map((view) => view.unit),
  };
}

interface SchemaUnit {
  readonly schema: string;
  readonly unit: CodeUnit;
}

function lower(value: string | null | undefined): string {
  return (value ?? '').toLowerCase();
}

function modeOf(sqlMode: string) {
  return parseSqlMode(sqlMode);
}

function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}
