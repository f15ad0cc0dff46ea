/**
 * Built-in functions whose effect a statement's kind does not show. Names are compared without
 * their schema, so `public.pg_read_file` (a shadowing user function) counts too: better a false
 * alarm than a miss.
 */

/** Read, write or list files on the database server (core, adminpack, large objects). */
export const FILE_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'pg_ls_logdir',
  'pg_ls_waldir',
  'pg_ls_tmpdir',
  'pg_ls_archive_statusdir',
  'pg_ls_logicalsnapdir',
  'pg_ls_logicalmapdir',
  'pg_ls_replslotdir',
  'pg_ls_summariesdir',
  'lo_import',
  'lo_export',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_file_sync',
  'pg_file_read',
  'pg_file_length',
  'pg_logdir_ls',
]);

/** System views that read server configuration files. */
export const FILE_VIEWS: ReadonlySet<string> = new Set([
  'pg_hba_file_rules',
  'pg_ident_file_mappings',
  'pg_file_settings',
]);

/**
 * Run SQL given as text: the statement it runs is invisible to the parser unless it is a constant,
 * which `SQL_TEXT_ARGUMENT` says where to find.
 */
export const DYNAMIC_SQL_FUNCTIONS: ReadonlySet<string> = new Set([
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
  'ts_stat',
  'ts_rewrite',
  'crosstab',
  'crosstab2',
  'crosstab3',
  'crosstab4',
  'connectby',
]);

/** Prefixes of function families that run SQL text, here or on another server. */
export const DYNAMIC_SQL_PREFIXES: readonly string[] = ['dblink'];

/** Argument index holding the SQL text, for functions whose constant SQL can be analysed. */
export const SQL_TEXT_ARGUMENT: Readonly<Record<string, number>> = {
  query_to_xml: 0,
  query_to_xmlschema: 0,
  query_to_xml_and_xmlschema: 0,
  ts_stat: 0,
};

/** Server administration: sessions, configuration, WAL, replication, statistics. */
export const ADMIN_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_create_physical_replication_slot',
  'pg_create_logical_replication_slot',
  'pg_copy_physical_replication_slot',
  'pg_copy_logical_replication_slot',
  'pg_drop_replication_slot',
  'pg_replication_slot_advance',
  'pg_logical_emit_message',
  'pg_log_backend_memory_contexts',
  'pg_wal_replay_pause',
  'pg_wal_replay_resume',
  'pg_import_system_collations',
  'pg_stat_reset',
  'pg_stat_reset_shared',
  'pg_stat_reset_single_table_counters',
  'pg_stat_reset_single_function_counters',
  'pg_stat_reset_slru',
  'pg_stat_reset_replication_slot',
  'pg_stat_reset_subscription_stats',
  'pg_replication_origin_create',
  'pg_replication_origin_drop',
  'pg_replication_origin_session_setup',
  'pg_replication_origin_advance',
]);

/** Change data although called from a SELECT. */
export const WRITE_FUNCTIONS: ReadonlySet<string> = new Set([
  'nextval',
  'setval',
  'lo_create',
  'lo_creat',
  'lo_unlink',
  'lo_put',
  'lo_from_bytea',
  'lo_truncate',
  'lo_truncate64',
  'lowrite',
  'pg_notify',
]);

/** Settings whose change is an identity change. */
export const IDENTITY_SETTINGS: ReadonlySet<string> = new Set(['role', 'session_authorization']);

/**
 * Settings a dump tool sets for its own session that neither change who the session is nor how
 * text is lexed or values are formatted (so masking reads output as it always does): the closed
 * list against which a setting named only through a row of pg_settings is judged (see
 * provenSettingCalls in statement-collector.ts). Anything not listed keeps the judgement of a
 * setting named at run time.
 */
export const HARMLESS_SETTINGS: ReadonlySet<string> = new Set([
  'restrict_nonsystem_relation_kind',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'synchronize_seqscans',
]);

/** Settings only a superuser may change (a subset: those that hide activity or bypass checks). */
export function isAdminSetting(name: string): boolean {
  return (
    ADMIN_SETTINGS.has(name) ||
    name.startsWith('log_') ||
    name.startsWith('debug_') ||
    name.startsWith('trace_')
  );
}

const ADMIN_SETTINGS = new Set([
  'session_replication_role',
  'allow_system_table_mods',
  'zero_damaged_pages',
  'ignore_checksum_failure',
  'ignore_system_indexes',
  'lo_compat_privileges',
  'session_preload_libraries',
  'local_preload_libraries',
  'dynamic_library_path',
  'jit_provider',
]);
