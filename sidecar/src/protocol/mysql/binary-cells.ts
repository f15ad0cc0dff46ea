import { PayloadReader } from './packet-io.ts';

/** What the cell readers and the row rewriter need of a column definition. */
export interface ColumnType {
  readonly type: number;
  readonly charset: number;
}

/** The type and character set of a column definition packet (protocol 4.1). */
export function columnType(payload: Buffer): ColumnType {
  const r = new PayloadReader(payload);
  for (let i = 0; i < 6; i++) r.lenencBytes();
  r.lenenc();
  const charset = r.u16();
  r.u32();
  return { type: r.u8(), charset };
}

/** Column and parameter type codes (those the proxy reads). */
export const MYSQL_TYPE = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  JSON: 245,
  NEWDECIMAL: 246,
} as const;

/** Fixed sizes of binary-protocol values; -1: one length byte then that many bytes; absent: length-encoded. */
export const BINARY_SIZE: Readonly<Record<number, number>> = {
  [MYSQL_TYPE.TINY]: 1,
  [MYSQL_TYPE.SHORT]: 2,
  [MYSQL_TYPE.YEAR]: 2,
  [MYSQL_TYPE.LONG]: 4,
  [MYSQL_TYPE.INT24]: 4,
  [MYSQL_TYPE.FLOAT]: 4,
  [MYSQL_TYPE.LONGLONG]: 8,
  [MYSQL_TYPE.DOUBLE]: 8,
  [MYSQL_TYPE.NULL]: 0,
  [MYSQL_TYPE.DATE]: -1,
  [MYSQL_TYPE.NEWDATE]: -1,
  [MYSQL_TYPE.DATETIME]: -1,
  [MYSQL_TYPE.TIMESTAMP]: -1,
  [MYSQL_TYPE.TIME]: -1,
};

/**
 * The cells of a binary-protocol row (COM_STMT_EXECUTE) as the bytes each value takes: null for NULL,
 * a length-encoded value without its length. Throws ProtocolError on a row shorter than its columns.
 */
export function binaryCells(payload: Buffer, columns: readonly ColumnType[]): (Buffer | null)[] {
  // The null bitmap of a binary row is offset by two bits.
  const r = new PayloadReader(payload, 1);
  const bitmap = r.bytes((columns.length + 7 + 2) >> 3);
  const cells: (Buffer | null)[] = [];
  for (let i = 0; i < columns.length; i++) {
    const bit = i + 2;
    if (bitmap[bit >> 3]! & (1 << (bit & 7))) {
      cells.push(null);
      continue;
    }
    const size = BINARY_SIZE[columns[i]!.type];
    if (size === undefined) cells.push(r.lenencBytes());
    else cells.push(r.bytes(size >= 0 ? size : r.u8()));
  }
  return cells;
}
