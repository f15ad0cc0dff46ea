/**
 * What lineage knows of PostgreSQL's built-in functions and operators. Anything not listed here is
 * treated as a function we cannot see into: its result is opaque and the statement may read data
 * that its text does not show. So the lists are allowlists: a built-in that reads relations, files,
 * other sessions or query text given as a string (query_to_xml, pg_read_file, lo_get, dblink,
 * pg_stat_get_activity, ...) must never be added.
 */

/** Functions whose result is computed from their arguments only (and harmless session or catalog facts). */
const PURE = `
ascii bit_length btrim char_length character_length chr concat concat_ws convert convert_from convert_to
decode encode format initcap left length lower lpad ltrim md5 normalize octet_length overlay position
quote_ident quote_literal quote_nullable regexp_count regexp_instr regexp_like regexp_match regexp_matches
regexp_replace regexp_split_to_array regexp_split_to_table regexp_substr repeat replace reverse right rpad
rtrim split_part starts_with string_to_array string_to_table strpos substr substring to_ascii to_hex
translate unistr upper sha224 sha256 sha384 sha512 get_bit get_byte set_bit set_byte bit_count crc32 crc32c
casefold text bpchar varchar name similar_to_escape similar_escape like_escape
to_char to_number to_date to_timestamp pg_typeof num_nulls num_nonnulls
abs cbrt ceil ceiling degrees div exp factorial floor gcd lcm ln log log10 min_scale mod pi power pow
radians random random_normal round scale sign sqrt trim_scale trunc width_bucket acos acosd asin asind atan
atand atan2 atan2d cos cosd cot cotd sin sind tan tand sinh cosh tanh asinh acosh atanh erf erfc
numeric int2 int4 int8 float4 float8 bool int date time timestamp timestamptz interval
age clock_timestamp date_add date_bin date_part date_subtract date_trunc extract isfinite justify_days
justify_hours justify_interval make_date make_interval make_time make_timestamp make_timestamptz now
statement_timestamp timeofday transaction_timestamp timezone overlaps
array_append array_cat array_dims array_fill array_length array_lower array_ndims array_position
array_positions array_prepend array_remove array_replace array_reverse array_sample array_shuffle array_sort
array_to_json array_to_string array_upper cardinality trim_array unnest generate_subscripts generate_series
to_json to_jsonb row_to_json json_build_array jsonb_build_array json_build_object jsonb_build_object
json_object jsonb_object json_array_length jsonb_array_length json_each jsonb_each json_each_text
jsonb_each_text json_extract_path jsonb_extract_path json_extract_path_text jsonb_extract_path_text
json_object_keys jsonb_object_keys json_populate_record jsonb_populate_record json_populate_recordset
jsonb_populate_recordset json_to_record jsonb_to_record json_to_recordset jsonb_to_recordset
json_array_elements jsonb_array_elements json_array_elements_text jsonb_array_elements_text json_strip_nulls
jsonb_strip_nulls jsonb_set jsonb_set_lax jsonb_insert jsonb_pretty json_typeof jsonb_typeof jsonb_concat
jsonb_delete jsonb_delete_path jsonb_contains jsonb_exists
jsonb_path_exists jsonb_path_match jsonb_path_query jsonb_path_query_array jsonb_path_query_first
jsonb_path_exists_tz jsonb_path_match_tz jsonb_path_query_tz jsonb_path_query_array_tz
jsonb_path_query_first_tz jsonb_populate_record_valid
to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank ts_rank_cd ts_headline
setweight strip tsvector_to_array array_to_tsvector numnode querytree
xmlcomment xmltext xpath xpath_exists xml_is_well_formed xml_is_well_formed_content
xml_is_well_formed_document
gen_random_uuid uuidv4 uuidv7 uuid_extract_timestamp uuid_extract_version
host hostmask masklen netmask network broadcast abbrev family inet_merge inet_same_family set_masklen
current_database current_schema current_schemas version pg_backend_pid inet_client_addr inet_client_port
inet_server_addr inet_server_port pg_postmaster_start_time pg_conf_load_time pg_is_in_recovery
txid_current txid_current_if_assigned pg_current_xact_id pg_current_xact_id_if_assigned
nextval currval lastval
format_type pg_get_userbyid obj_description col_description shobj_description pg_get_expr pg_get_indexdef
pg_get_constraintdef pg_get_triggerdef pg_get_viewdef pg_get_functiondef pg_get_function_arguments
pg_get_function_result pg_get_function_identity_arguments pg_get_ruledef pg_get_statisticsobjdef
pg_get_partkeydef pg_get_partition_constraintdef pg_get_serial_sequence pg_table_size pg_relation_size
pg_total_relation_size pg_indexes_size pg_database_size pg_size_pretty pg_size_bytes pg_table_is_visible
pg_type_is_visible pg_function_is_visible pg_collation_is_visible has_table_privilege has_schema_privilege
has_column_privilege has_database_privilege has_function_privilege has_sequence_privilege pg_has_role
pg_encoding_to_char pg_char_to_encoding pg_get_keywords to_regclass to_regtype to_regproc to_regprocedure
to_regnamespace to_regrole pg_tablespace_location pg_relation_filenode pg_get_constraintdef
count sum avg min max bool_and bool_or every bit_and bit_or bit_xor stddev stddev_pop stddev_samp variance
var_pop var_samp corr covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope
regr_sxx regr_sxy regr_syy mode percentile_cont percentile_disc any_value range_agg range_intersect_agg
string_agg array_agg json_agg jsonb_agg json_agg_strict jsonb_agg_strict json_object_agg jsonb_object_agg
json_object_agg_strict jsonb_object_agg_strict json_object_agg_unique jsonb_object_agg_unique
json_object_agg_unique_strict jsonb_object_agg_unique_strict xmlagg
row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
`;

/**
 * Built-ins that store or publish their arguments where a later statement can read them back: a
 * write of whatever they are given.
 */
const SINKS = `
setval pg_notify lo_from_bytea lo_put lowrite pg_logical_emit_message
pg_advisory_lock pg_advisory_lock_shared pg_advisory_xact_lock pg_advisory_xact_lock_shared
pg_try_advisory_lock pg_try_advisory_lock_shared pg_try_advisory_xact_lock pg_try_advisory_xact_lock_shared
pg_advisory_unlock pg_advisory_unlock_shared
`;

export const PURE_FUNCTIONS: ReadonlySet<string> = new Set(PURE.split(/\s+/).filter(Boolean));
export const SINK_FUNCTIONS: ReadonlySet<string> = new Set(SINKS.split(/\s+/).filter(Boolean));

/** Built-in operators (pg_operator of PostgreSQL 15 to 18); `!=` arrives from the parser as `<>`. */
export const BUILTIN_OPERATORS: ReadonlySet<string> = new Set(
  `!! !~ !~* !~~ !~~* # ## #- #> #>> % & && &< &<| &> * *< *<= *<> *= *> *>= + - -> ->> -|- / < <-> << <<=
  <<| <= <> <@ <^ = > >= >> >>= >^ ? ?# ?& ?- ?-| ?| ?|| @ @-@ @> @? @@ @@@ ^ ^@ | |&> |/ |>> || ||/ ~ ~*
  ~<=~ ~<~ ~= ~>=~ ~>~ ~~ ~~*`.split(/\s+/),
);

/** How a set-returning built-in used in FROM names its output columns. */
export type FromShape =
  /** Named OUT parameters (json_each: key, value); a single one also names the column. */
  | { readonly kind: 'columns'; readonly names: readonly string[] }
  /** A base type: one column, named after the alias or else the function. */
  | { readonly kind: 'scalar' }
  /** One column per argument (unnest(a, b) in FROM), each named after the function. */
  | { readonly kind: 'per-argument' }
  /** `record`: the columns come from the column definition list. */
  | { readonly kind: 'record' }
  /** The row type of the first argument (`json_populate_record(NULL::customers, ...)`). */
  | { readonly kind: 'row-of-first-argument' };

const KEY_VALUE: FromShape = { kind: 'columns', names: ['key', 'value'] };
const VALUE: FromShape = { kind: 'columns', names: ['value'] };
const RECORD: FromShape = { kind: 'record' };
const ROW_OF_FIRST: FromShape = { kind: 'row-of-first-argument' };
const SCALAR: FromShape = { kind: 'scalar' };

const FROM_SHAPES: ReadonlyMap<string, FromShape> = new Map<string, FromShape>([
  ['json_each', KEY_VALUE],
  ['jsonb_each', KEY_VALUE],
  ['json_each_text', KEY_VALUE],
  ['jsonb_each_text', KEY_VALUE],
  ['json_array_elements', VALUE],
  ['jsonb_array_elements', VALUE],
  ['json_array_elements_text', VALUE],
  ['jsonb_array_elements_text', VALUE],
  ['json_to_record', RECORD],
  ['jsonb_to_record', RECORD],
  ['json_to_recordset', RECORD],
  ['jsonb_to_recordset', RECORD],
  ['json_populate_record', ROW_OF_FIRST],
  ['jsonb_populate_record', ROW_OF_FIRST],
  ['json_populate_recordset', ROW_OF_FIRST],
  ['jsonb_populate_recordset', ROW_OF_FIRST],
  ['unnest', { kind: 'per-argument' }],
  ['pg_get_keywords', { kind: 'columns', names: ['word', 'catcode', 'barelabel', 'catdesc', 'baredesc'] }],
]);

/** The FROM shape of a pure built-in; functions without an entry return one value of a base type. */
export function fromShape(name: string): FromShape {
  return FROM_SHAPES.get(name) ?? SCALAR;
}
