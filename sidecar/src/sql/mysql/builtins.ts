/**
 * MySQL and MariaDB built-in functions whose result is computed from their arguments only (and
 * harmless session facts). An allowlist, as in sql/lineage/builtins.ts: anything else is a function
 * lineage cannot see into (LOAD_FILE, stored functions, UDFs...), whose result is opaque.
 */
const PURE = `
abs acos aes_decrypt aes_encrypt any_value ascii asin atan atan2 avg benchmark bin bin_to_uuid bit_and
bit_count bit_length bit_or bit_xor cast ceil ceiling char char_length character_length charset chr
coalesce collation compress concat concat_ws conv convert convert_tz cos cot count crc32 curdate
current_date current_time current_timestamp current_user curtime database date date_add date_format
date_sub datediff day dayname dayofmonth dayofweek dayofyear decode degrees des_decrypt des_encrypt elt
encode encrypt exp export_set extract extractvalue field find_in_set floor format format_bytes from_base64
from_days from_unixtime greatest group_concat hex hour if ifnull inet6_aton inet6_ntoa inet_aton inet_ntoa
insert instr interval is_ipv4 is_ipv6 is_uuid isnull json_array json_arrayagg json_array_append
json_array_insert json_compact json_contains json_contains_path json_depth json_detailed json_extract
json_insert json_keys json_length json_loose json_merge json_merge_patch json_merge_preserve json_object
json_objectagg json_overlaps json_pretty json_quote json_remove json_replace json_search json_set
json_type json_unquote json_valid json_value last_day lcase least left length ln localtime
localtimestamp locate log log10 log2 lower lpad ltrim make_set makedate maketime max md5 microsecond mid
min minute mod month monthname now nullif oct octet_length ord password period_add period_diff pi
position pow power quarter quote radians rand regexp_instr regexp_like regexp_replace regexp_substr
repeat replace reverse right round rpad rtrim sec_to_time second sha sha1 sha2 sign sin soundex space
sqrt std stddev stddev_pop stddev_samp str_to_date strcmp subdate substr substring substring_index
subtime sum sysdate tan time time_format time_to_sec timediff timestamp timestampadd timestampdiff
to_base64 to_days to_seconds trim truncate ucase uncompress uncompressed_length unhex unix_timestamp
updatexml upper user utc_date utc_time utc_timestamp uuid uuid_short uuid_to_bin var_pop var_samp
variance version week weekday weekofyear weight_string year yearweek row_number rank dense_rank
percent_rank cume_dist ntile lag lead first_value last_value nth_value
`;
/**
 * Functions of the session, not of any column: who and where it is, how many rows the last statement
 * touched. CONNECTION_ID() is @@pseudo_thread_id, which a session may set: lineage judges such a SET
 * as a write, so no masked value reaches it. LAST_INSERT_ID() is absent on purpose:
 * LAST_INSERT_ID(expr) stores any value for the next call to return.
 */
const SESSION = 'connection_id schema session_user system_user current_role found_rows row_count';

export const MYSQL_PURE_FUNCTIONS: ReadonlySet<string> = new Set(
  `${PURE} ${SESSION}`.split(/\s+/).filter(Boolean),
);

/** Functions whose value reveals nothing of their arguments' values. */
export const MYSQL_COUNTING_FUNCTIONS: ReadonlySet<string> = new Set([
  'count',
  'row_number',
  'rank',
  'dense_rank',
  'percent_rank',
  'cume_dist',
  'ntile',
]);

/**
 * Built-ins through which a value the session sees masked may pass to an output column (then masked):
 * for every value they return one result and cannot fail, wait or branch on it. The same rule as
 * PostgreSQL's (sql/lineage/total-expressions.ts); an allowlist, so a function not named here (JSON
 * parsing, XPath, geometry, regular expressions, arithmetic that can overflow, IF's condition) makes
 * its arguments conditions, which masking refuses over masked columns.
 */
export const MYSQL_TOTAL_FUNCTIONS: ReadonlySet<string> = new Set(
  `ascii bit_length char_length character_length concat concat_ws hex lcase lower ucase upper length
   octet_length md5 sha sha1 quote reverse replace ltrim rtrim trim to_base64 soundex min max any_value
   group_concat first_value last_value coalesce ifnull nullif greatest least isnull strcmp`
    .split(/\s+/)
    .filter(Boolean),
);
