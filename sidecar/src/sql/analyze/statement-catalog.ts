import { type AstNode, objectTypeName, str } from './ast.ts';
import type { StatementClass, StatementKind } from './statement-facts.ts';

/**
 * Statement classes: what a DatabaseAccess must `allow` for a statement to run.
 *
 * - read: SELECT, VALUES, TABLE, EXPLAIN (without ANALYZE), DECLARE CURSOR / FETCH, COPY ... TO
 *   STDOUT, LOCK ... IN ACCESS SHARE MODE (the lock every SELECT takes; pg_dump takes it on what it
 *   dumps); and creating TEMPORARY tables, views and sequences (session-private scratch space that
 *   nothing outside the session sees; PostgreSQL counts them as DDL, Gatehouse does not).
 * - write: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY ... FROM STDIN, SELECT ... FOR UPDATE/SHARE,
 *   LOCK in any stronger mode than ACCESS SHARE, NOTIFY, REFRESH MATERIALIZED VIEW, ANALYZE (it
 *   refreshes the planner's statistics and changes no row), and functions that change data (nextval,
 *   setval, lo_unlink, pg_notify...).
 * - ddl: CREATE, ALTER, DROP, COMMENT ON, SECURITY LABEL of schema objects (tables, views, indexes,
 *   functions, types, schemas, triggers, rules, policies...), SELECT INTO and CREATE TABLE AS.
 * - admin: roles and privileges (CREATE/ALTER/DROP ROLE, GRANT, REVOKE, ALTER DEFAULT PRIVILEGES,
 *   REASSIGN/DROP OWNED), identity changes (SET ROLE, SET SESSION AUTHORIZATION, set_config('role'),
 *   DISCARD ALL), databases, tablespaces, extensions, languages, foreign-data wrappers, servers, user
 *   mappings, publications, subscriptions, event triggers, ALTER SYSTEM, LOAD, VACUUM,
 *   CLUSTER, REINDEX, CHECKPOINT, two-phase commit, superuser-only settings, server file and program
 *   access, server administration functions (pg_terminate_backend...), and any code Gatehouse cannot
 *   see into (DO or function bodies that are not analysable, EXECUTE of non-constant strings).
 * - none: transaction control, ordinary session settings (SET/RESET/SHOW), LISTEN/UNLISTEN, CLOSE,
 *   DEALLOCATE, DISCARD PLANS/TEMP/SEQUENCES, PREPARE and EXECUTE themselves (they take the classes
 *   of the prepared statement), DO itself (it takes those of its body), CALL itself (it takes those
 *   of the procedure's body, read from the catalog: see sql/code-reach.ts).
 * - A statement nobody can parse, or of a type this table does not know, needs every class.
 */
export interface StatementType {
  readonly kind: StatementKind;
  readonly classes: readonly StatementClass[];
  readonly command: string;
}

export const EVERY_CLASS: readonly StatementClass[] = Object.freeze(['read', 'write', 'ddl', 'admin']);

const NONE: readonly StatementClass[] = [];
const READ: readonly StatementClass[] = ['read'];
const WRITE: readonly StatementClass[] = ['write'];
const DDL: readonly StatementClass[] = ['ddl'];
const ADMIN: readonly StatementClass[] = ['admin'];

type Entry = readonly [StatementKind, readonly StatementClass[], string | ((node: AstNode) => string)];

const TYPES: Record<string, Entry> = {
  SelectStmt: ['select', READ, 'SELECT'],
  ReturnStmt: ['select', READ, 'RETURN'],
  InsertStmt: ['insert', WRITE, 'INSERT'],
  UpdateStmt: ['update', WRITE, 'UPDATE'],
  DeleteStmt: ['delete', WRITE, 'DELETE'],
  MergeStmt: ['merge', WRITE, 'MERGE'],
  TruncateStmt: ['truncate', WRITE, 'TRUNCATE TABLE'],
  CopyStmt: ['copy', READ, 'COPY'],
  ExplainStmt: ['explain', READ, 'EXPLAIN'],
  VariableSetStmt: ['set', NONE, (n) => (String(n['kind']).startsWith('VAR_RESET') ? 'RESET' : 'SET')],
  VariableShowStmt: ['show', NONE, 'SHOW'],
  ConstraintsSetStmt: ['set', NONE, 'SET CONSTRAINTS'],
  TransactionStmt: ['transaction', NONE, (n) => transactionCommand(n)],
  PrepareStmt: ['prepare', NONE, 'PREPARE'],
  ExecuteStmt: ['execute', NONE, 'EXECUTE'],
  DeallocateStmt: ['deallocate', NONE, 'DEALLOCATE'],
  DeclareCursorStmt: ['declare-cursor', READ, 'DECLARE CURSOR'],
  FetchStmt: ['fetch', READ, (n) => (n['ismove'] ? 'MOVE' : 'FETCH')],
  ClosePortalStmt: ['close-cursor', NONE, 'CLOSE CURSOR'],
  DoStmt: ['do', NONE, 'DO'],
  CallStmt: ['call', NONE, 'CALL'],
  LockStmt: ['lock', WRITE, 'LOCK TABLE'],
  ListenStmt: ['listen', NONE, 'LISTEN'],
  UnlistenStmt: ['listen', NONE, 'UNLISTEN'],
  NotifyStmt: ['notify', WRITE, 'NOTIFY'],
  LoadStmt: ['load', ADMIN, 'LOAD'],
  VacuumStmt: ['maintenance', ADMIN, (n) => (n['is_vacuumcmd'] ? 'VACUUM' : 'ANALYZE')],
  ClusterStmt: ['maintenance', ADMIN, 'CLUSTER'],
  ReindexStmt: ['maintenance', ADMIN, 'REINDEX'],
  CheckPointStmt: ['maintenance', ADMIN, 'CHECKPOINT'],
  DiscardStmt: [
    'discard',
    NONE,
    (n) => `DISCARD ${String(n['target'] ?? 'DISCARD_ALL').replace('DISCARD_', '')}`,
  ],
  RefreshMatViewStmt: ['refresh', WRITE, 'REFRESH MATERIALIZED VIEW'],

  CreateStmt: ['create', DDL, 'CREATE TABLE'],
  CreateTableAsStmt: [
    'create',
    DDL,
    (n) => (n['objtype'] === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS'),
  ],
  ViewStmt: ['create', DDL, 'CREATE VIEW'],
  CreateSeqStmt: ['create', DDL, 'CREATE SEQUENCE'],
  IndexStmt: ['create', DDL, 'CREATE INDEX'],
  CreateSchemaStmt: ['create', DDL, 'CREATE SCHEMA'],
  CreateFunctionStmt: ['create', DDL, (n) => (n['is_procedure'] ? 'CREATE PROCEDURE' : 'CREATE FUNCTION')],
  RuleStmt: ['create', DDL, 'CREATE RULE'],
  CreateTrigStmt: ['create', DDL, 'CREATE TRIGGER'],
  CreatePolicyStmt: ['create', DDL, 'CREATE POLICY'],
  DefineStmt: ['create', DDL, (n) => `CREATE ${objectTypeName(n['kind'])}`],
  CompositeTypeStmt: ['create', DDL, 'CREATE TYPE'],
  CreateEnumStmt: ['create', DDL, 'CREATE TYPE'],
  CreateRangeStmt: ['create', DDL, 'CREATE TYPE'],
  CreateDomainStmt: ['create', DDL, 'CREATE DOMAIN'],
  CreateStatsStmt: ['create', DDL, 'CREATE STATISTICS'],
  CreateCastStmt: ['create', DDL, 'CREATE CAST'],
  CreateConversionStmt: ['create', DDL, 'CREATE CONVERSION'],
  CreateOpClassStmt: ['create', DDL, 'CREATE OPERATOR CLASS'],
  CreateOpFamilyStmt: ['create', DDL, 'CREATE OPERATOR FAMILY'],
  CreateForeignTableStmt: ['create', DDL, 'CREATE FOREIGN TABLE'],
  ImportForeignSchemaStmt: ['create', DDL, 'IMPORT FOREIGN SCHEMA'],
  CommentStmt: ['comment', DDL, 'COMMENT'],
  SecLabelStmt: ['comment', DDL, 'SECURITY LABEL'],
  DropStmt: ['drop', DDL, (n) => `DROP ${objectTypeName(n['removeType'])}`],
  RenameStmt: ['alter', DDL, (n) => `ALTER ${objectTypeName(n['renameType'])}`],
  AlterTableStmt: ['alter', DDL, (n) => `ALTER ${objectTypeName(n['objtype'])}`],
  AlterObjectSchemaStmt: ['alter', DDL, (n) => `ALTER ${objectTypeName(n['objectType'])}`],
  AlterOwnerStmt: ['alter', DDL, (n) => `ALTER ${objectTypeName(n['objectType'])}`],
  AlterObjectDependsStmt: ['alter', DDL, (n) => `ALTER ${objectTypeName(n['objectType'])}`],
  AlterFunctionStmt: ['alter', DDL, (n) => `ALTER ${objectTypeName(n['objtype'])}`],
  AlterSeqStmt: ['alter', DDL, 'ALTER SEQUENCE'],
  AlterDomainStmt: ['alter', DDL, 'ALTER DOMAIN'],
  AlterEnumStmt: ['alter', DDL, 'ALTER TYPE'],
  AlterTypeStmt: ['alter', DDL, 'ALTER TYPE'],
  AlterCollationStmt: ['alter', DDL, 'ALTER COLLATION'],
  AlterOperatorStmt: ['alter', DDL, 'ALTER OPERATOR'],
  AlterOpFamilyStmt: ['alter', DDL, 'ALTER OPERATOR FAMILY'],
  AlterStatsStmt: ['alter', DDL, 'ALTER STATISTICS'],
  AlterPolicyStmt: ['alter', DDL, 'ALTER POLICY'],
  AlterTSDictionaryStmt: ['alter', DDL, 'ALTER TEXT SEARCH DICTIONARY'],
  AlterTSConfigurationStmt: ['alter', DDL, 'ALTER TEXT SEARCH CONFIGURATION'],

  CreatedbStmt: ['create', ADMIN, 'CREATE DATABASE'],
  AlterDatabaseStmt: ['alter', ADMIN, 'ALTER DATABASE'],
  AlterDatabaseSetStmt: ['alter', ADMIN, 'ALTER DATABASE'],
  AlterDatabaseRefreshCollStmt: ['alter', ADMIN, 'ALTER DATABASE'],
  DropdbStmt: ['drop', ADMIN, 'DROP DATABASE'],
  CreateTableSpaceStmt: ['create', ADMIN, 'CREATE TABLESPACE'],
  DropTableSpaceStmt: ['drop', ADMIN, 'DROP TABLESPACE'],
  AlterTableSpaceOptionsStmt: ['alter', ADMIN, 'ALTER TABLESPACE'],
  AlterTableMoveAllStmt: ['alter', ADMIN, 'ALTER TABLE'],
  CreateRoleStmt: ['create', ADMIN, (n) => `CREATE ${roleWord(n)}`],
  AlterRoleStmt: ['alter', ADMIN, 'ALTER ROLE'],
  AlterRoleSetStmt: ['alter', ADMIN, 'ALTER ROLE'],
  DropRoleStmt: ['drop', ADMIN, 'DROP ROLE'],
  GrantStmt: ['grant', ADMIN, (n) => (n['is_grant'] ? 'GRANT' : 'REVOKE')],
  GrantRoleStmt: ['grant', ADMIN, (n) => (n['is_grant'] ? 'GRANT ROLE' : 'REVOKE ROLE')],
  AlterDefaultPrivilegesStmt: ['grant', ADMIN, 'ALTER DEFAULT PRIVILEGES'],
  DropOwnedStmt: ['drop', ADMIN, 'DROP OWNED'],
  ReassignOwnedStmt: ['alter', ADMIN, 'REASSIGN OWNED'],
  AlterSystemStmt: ['alter', ADMIN, 'ALTER SYSTEM'],
  CreateExtensionStmt: ['create', ADMIN, 'CREATE EXTENSION'],
  AlterExtensionStmt: ['alter', ADMIN, 'ALTER EXTENSION'],
  AlterExtensionContentsStmt: ['alter', ADMIN, 'ALTER EXTENSION'],
  CreatePLangStmt: ['create', ADMIN, 'CREATE LANGUAGE'],
  CreateFdwStmt: ['create', ADMIN, 'CREATE FOREIGN DATA WRAPPER'],
  AlterFdwStmt: ['alter', ADMIN, 'ALTER FOREIGN DATA WRAPPER'],
  CreateForeignServerStmt: ['create', ADMIN, 'CREATE SERVER'],
  AlterForeignServerStmt: ['alter', ADMIN, 'ALTER SERVER'],
  CreateUserMappingStmt: ['create', ADMIN, 'CREATE USER MAPPING'],
  AlterUserMappingStmt: ['alter', ADMIN, 'ALTER USER MAPPING'],
  DropUserMappingStmt: ['drop', ADMIN, 'DROP USER MAPPING'],
  CreatePublicationStmt: ['create', ADMIN, 'CREATE PUBLICATION'],
  AlterPublicationStmt: ['alter', ADMIN, 'ALTER PUBLICATION'],
  CreateSubscriptionStmt: ['create', ADMIN, 'CREATE SUBSCRIPTION'],
  AlterSubscriptionStmt: ['alter', ADMIN, 'ALTER SUBSCRIPTION'],
  DropSubscriptionStmt: ['drop', ADMIN, 'DROP SUBSCRIPTION'],
  CreateEventTrigStmt: ['create', ADMIN, 'CREATE EVENT TRIGGER'],
  AlterEventTrigStmt: ['alter', ADMIN, 'ALTER EVENT TRIGGER'],
  CreateAmStmt: ['create', ADMIN, 'CREATE ACCESS METHOD'],
  CreateTransformStmt: ['create', ADMIN, 'CREATE TRANSFORM'],
};

/** DROP of these object types is administration, not schema work. */
const ADMIN_OBJECT_TYPES = new Set([
  'OBJECT_EXTENSION',
  'OBJECT_FDW',
  'OBJECT_FOREIGN_SERVER',
  'OBJECT_LANGUAGE',
  'OBJECT_EVENT_TRIGGER',
  'OBJECT_PUBLICATION',
  'OBJECT_ACCESS_METHOD',
  'OBJECT_TRANSFORM',
]);

export function statementType(type: string, node: AstNode): StatementType | undefined {
  const entry = TYPES[type];
  if (!entry) return undefined;
  const [kind, classes, command] = entry;
  return {
    kind,
    classes:
      type === 'DropStmt' && ADMIN_OBJECT_TYPES.has(str(node['removeType']) ?? '')
        ? ADMIN
        : type === 'TransactionStmt' && TWO_PHASE.has(str(node['kind']) ?? '')
          ? ADMIN
          : type === 'VacuumStmt' && !node['is_vacuumcmd']
            ? WRITE
            : type === 'LockStmt' && node['mode'] === ACCESS_SHARE_LOCK
              ? READ
              : classes,
    command: typeof command === 'string' ? command : command(node),
  };
}

export function isStatementType(type: string): boolean {
  return type in TYPES;
}

/** LOCKMODE AccessShareLock in PostgreSQL's lockdefs.h: what SELECT takes, and conflicts only with ACCESS EXCLUSIVE. */
const ACCESS_SHARE_LOCK = 1;

const TWO_PHASE = new Set([
  'TRANS_STMT_PREPARE',
  'TRANS_STMT_COMMIT_PREPARED',
  'TRANS_STMT_ROLLBACK_PREPARED',
]);

function transactionCommand(node: AstNode): string {
  const kind = str(node['kind'])?.replace('TRANS_STMT_', '') ?? 'BEGIN';
  return (
    {
      START: 'START TRANSACTION',
      ROLLBACK_TO: 'ROLLBACK TO SAVEPOINT',
      RELEASE: 'RELEASE SAVEPOINT',
      PREPARE: 'PREPARE TRANSACTION',
      COMMIT_PREPARED: 'COMMIT PREPARED',
      ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
    }[kind] ?? kind
  );
}

function roleWord(node: AstNode): string {
  return node['stmt_type'] === 'ROLESTMT_USER'
    ? 'USER'
    : node['stmt_type'] === 'ROLESTMT_GROUP'
      ? 'GROUP'
      : 'ROLE';
}
