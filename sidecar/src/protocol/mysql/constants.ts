/** Capability flags of the client/server protocol (Handshake v10, HandshakeResponse41). */
export const Capability = {
  LONG_PASSWORD: 1,
  FOUND_ROWS: 2,
  LONG_FLAG: 4,
  CONNECT_WITH_DB: 8,
  NO_SCHEMA: 16,
  COMPRESS: 32,
  ODBC: 64,
  LOCAL_FILES: 128,
  IGNORE_SPACE: 256,
  PROTOCOL_41: 512,
  INTERACTIVE: 1024,
  SSL: 2048,
  TRANSACTIONS: 8192,
  SECURE_CONNECTION: 32768,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  CAN_HANDLE_EXPIRED_PASSWORDS: 1 << 22,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
} as const;

/**
 * What the proxy can relay unchanged (LOCAL_FILES too: a LOAD DATA LOCAL the policy allows is relayed,
 * for the file its text names only). Absent on purpose: COMPRESS (refused), OPTIONAL_RESULTSET_METADATA and QUERY_ATTRIBUTES (they change the layout of
 * results and of COM_QUERY), and MariaDB's extended capabilities (we present ourselves as MySQL-41).
 */
export const RELAYED_CAPABILITIES =
  Capability.LONG_PASSWORD |
  Capability.FOUND_ROWS |
  Capability.LONG_FLAG |
  Capability.CONNECT_WITH_DB |
  Capability.NO_SCHEMA |
  Capability.ODBC |
  Capability.IGNORE_SPACE |
  Capability.PROTOCOL_41 |
  Capability.INTERACTIVE |
  Capability.TRANSACTIONS |
  Capability.SECURE_CONNECTION |
  Capability.MULTI_STATEMENTS |
  Capability.LOCAL_FILES |
  Capability.MULTI_RESULTS |
  Capability.PS_MULTI_RESULTS |
  Capability.PLUGIN_AUTH |
  Capability.CONNECT_ATTRS |
  Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.SESSION_TRACK |
  Capability.DEPRECATE_EOF;

export const Command = {
  SLEEP: 0x00,
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  CREATE_DB: 0x05,
  DROP_DB: 0x06,
  REFRESH: 0x07,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  PROCESS_INFO: 0x0a,
  CONNECT: 0x0b,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  TIME: 0x0f,
  DELAYED_INSERT: 0x10,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  TABLE_DUMP: 0x13,
  CONNECT_OUT: 0x14,
  REGISTER_SLAVE: 0x15,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  DAEMON: 0x1d,
  BINLOG_DUMP_GTID: 0x1e,
  RESET_CONNECTION: 0x1f,
} as const;

export const ServerStatus = {
  IN_TRANS: 0x0001,
  AUTOCOMMIT: 0x0002,
  MORE_RESULTS_EXISTS: 0x0008,
  CURSOR_EXISTS: 0x0040,
} as const;

/** The largest payload of one packet; a payload of exactly this length continues in the next packet. */
export const MAX_PACKET_PAYLOAD = 0xffffff;

/** Error codes the proxy answers with, and the SQLSTATE each goes with. */
export const MysqlError = {
  /** ER_DBACCESS_DENIED_ERROR */
  DB_ACCESS_DENIED: { code: 1044, sqlstate: '42000' },
  /** ER_ACCESS_DENIED_ERROR */
  ACCESS_DENIED: { code: 1045, sqlstate: '28000' },
  /** ER_UNKNOWN_COM_ERROR */
  UNKNOWN_COMMAND: { code: 1047, sqlstate: '08S01' },
  /** ER_CON_COUNT_ERROR */
  TOO_MANY_CONNECTIONS: { code: 1040, sqlstate: '08004' },
  /** ER_SERVER_SHUTDOWN */
  SHUTDOWN: { code: 1053, sqlstate: '08S01' },
  /** ER_NET_PACKETS_OUT_OF_ORDER / malformed packets */
  MALFORMED: { code: 1835, sqlstate: '08S01' },
  /** ER_NET_PACKET_TOO_LARGE */
  PACKET_TOO_LARGE: { code: 1153, sqlstate: '08S01' },
  /** ER_TABLEACCESS_DENIED_ERROR: the statement is refused by a guardrail. */
  TABLE_ACCESS_DENIED: { code: 1142, sqlstate: '42000' },
  /** ER_SPECIFIC_ACCESS_DENIED_ERROR: the statement needs a privilege the grant does not give. */
  SPECIFIC_ACCESS_DENIED: { code: 1227, sqlstate: '42000' },
  /** ER_NOT_SUPPORTED_YET */
  NOT_SUPPORTED: { code: 1235, sqlstate: '42000' },
  /**
   * ER_UNKNOWN_ERROR, with the SQLSTATE of a failed connection (pools retry 08xxx): the database is
   * unreachable or refused the proxy's own login. Never a number of 2000-2999: those are the client
   * library's own, and libmysqlclient/libmariadb read one from a server as a malformed packet (2027).
   */
  UPSTREAM_UNAVAILABLE: { code: 1105, sqlstate: '08S01' },
  /** ER_ERROR_ON_WRITE: the audit log cannot be written. */
  AUDIT_UNAVAILABLE: { code: 1026, sqlstate: 'HY000' },
  /** ER_UNKNOWN_STMT_HANDLER */
  UNKNOWN_STATEMENT: { code: 1243, sqlstate: 'HY000' },
  /** ER_UNKNOWN_CHARACTER_SET */
  UNKNOWN_CHARACTER_SET: { code: 1115, sqlstate: '42000' },
  /** ER_NO_SUCH_THREAD */
  NO_SUCH_THREAD: { code: 1094, sqlstate: 'HY000' },
} as const;

export type MysqlErrorKind = { readonly code: number; readonly sqlstate: string };

/**
 * Collation ids (as sent in the handshake) of big5, sjis, gbk, cp932 and gb18030, whose multibyte
 * characters may end in a byte that reads as `\`: the analyser reads text as UTF-8, so a session in one
 * of them could hide a quote from it. Refused at the handshake.
 */
export const UNSAFE_CLIENT_COLLATIONS: ReadonlySet<number> = new Set([
  1, 84, 13, 88, 28, 87, 95, 96, 248, 249, 250,
]);
