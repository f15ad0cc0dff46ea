/**
 * The relations of MySQL's and MariaDB's `information_schema` known to hold metadata, not data:
 * names and definitions of schemas, tables, columns, indexes, constraints, routines, triggers,
 * views, events, partitions and privileges, and the server's character sets, engines and plugins.
 * Their columns enter the masking catalog so that what they return traces to them, and no policy
 * classifies them (see sessionMasking): introspection (mariadb-dump, JDBC's DatabaseMetaData,
 * SQLAlchemy, Knex) sees names in clear.
 *
 * Closed world: a relation not listed here (PROCESSLIST and OPTIMIZER_TRACE hold statement texts
 * with their literals, USER_VARIABLES and INNODB_LOCKS hold values, QUERY_CACHE_INFO holds queries)
 * stays unknown to the catalog, so what it returns is masked for an identity that sees masked values.
 *
 * Definitions written by DDL count as metadata, as PostgreSQL's view definitions and column defaults
 * do: COLUMNS.COLUMN_DEFAULT, GENERATION_EXPRESSION, VIEWS.VIEW_DEFINITION, ROUTINES.ROUTINE_DEFINITION,
 * TRIGGERS.ACTION_STATEMENT, EVENTS.EVENT_DEFINITION, PARTITIONS.PARTITION_DESCRIPTION, CHECK_CLAUSE
 * and comments. A literal there was written into the schema by someone with DDL, not stored as a row;
 * the value scan still reads every text value that leaves a masked session.
 */
export const METADATA_SCHEMA = 'information_schema';

export const METADATA_RELATIONS: readonly string[] = [
  'ALL_PLUGINS',
  'APPLICABLE_ROLES',
  'CHARACTER_SETS',
  'CHECK_CONSTRAINTS',
  'COLLATIONS',
  'COLLATION_CHARACTER_SET_APPLICABILITY',
  'COLUMNS',
  'COLUMNS_EXTENSIONS',
  'COLUMN_PRIVILEGES',
  'ENABLED_ROLES',
  'ENGINES',
  'EVENTS',
  'FILES',
  'GEOMETRY_COLUMNS',
  'KEYWORDS',
  'KEY_COLUMN_USAGE',
  'PARAMETERS',
  'PARTITIONS',
  'PLUGINS',
  'REFERENTIAL_CONSTRAINTS',
  'ROUTINES',
  'SCHEMATA',
  'SCHEMA_PRIVILEGES',
  'SPATIAL_REF_SYS',
  'SQL_FUNCTIONS',
  'STATISTICS',
  'ST_GEOMETRY_COLUMNS',
  'ST_SPATIAL_REFERENCE_SYSTEMS',
  'TABLES',
  'TABLESPACES',
  'TABLES_EXTENSIONS',
  'TABLE_CONSTRAINTS',
  'TABLE_PRIVILEGES',
  'TRIGGERS',
  'USER_PRIVILEGES',
  'VIEWS',
];

/** Whether a (schema, table) is one of the metadata relations above, as MySQL compares names. */
export function isMetadataRelation(schema: string, table: string): boolean {
  return schema.toLowerCase() === METADATA_SCHEMA && METADATA_SET.has(table.toUpperCase());
}

const METADATA_SET: ReadonlySet<string> = new Set(METADATA_RELATIONS);
