import { ServerStatus } from './constants.ts';
import { PayloadReader } from './packet-io.ts';

/** How the server answers one command. */
export type ResponseShape =
  /** OK, ERR, or result sets (text rows for COM_QUERY, binary for COM_STMT_EXECUTE), possibly several. */
  | 'results'
  /** COM_STMT_PREPARE: OK_prepare, then parameter and column definitions. */
  | 'prepare'
  /** COM_FIELD_LIST: column definitions up to EOF, or ERR. */
  | 'field-list'
  /** One packet: OK, ERR, EOF, or COM_STATISTICS' string. */
  | 'single';

/** What the tracker reports about each finished result, for the audit. */
export interface ResultEnd {
  readonly ok: boolean;
  /** Rows returned, or affected for an OK. */
  readonly rows?: number;
  readonly errorCode?: number;
  readonly sqlstate?: string;
  /** The server status flags, when the packet that ended the result carried them. */
  readonly status: number | undefined;
  /** The whole command's answer is complete. */
  readonly last: boolean;
}

export interface PreparedOk {
  readonly statementId: number;
  /** How many parameters the statement has. */
  readonly params: number;
}

type Phase =
  | { kind: 'head' }
  | { kind: 'definitions'; remaining: number; next: Phase }
  | { kind: 'eof'; next: Phase }
  | { kind: 'rows'; count: number }
  | { kind: 'done' };

/**
 * Follows the server's answer to one command, packet by packet, without reading rows or column
 * definitions: `classify` sees each packet's first byte and length and says whether the packet must
 * be read; `read` takes the packets it asked for. Knows when the answer is complete.
 */
export class ResponseTracker {
  readonly shape: ResponseShape;
  private phase: Phase = { kind: 'head' };
  /** What the last packet classify did not ask for was: masking reads those too. */
  lastAccounted: 'definition' | 'row' | undefined;
  /** Results ended so far: the index of the result the next packets belong to. */
  resultIndex = 0;
  private readonly deprecateEof: boolean;

  constructor(shape: ResponseShape, deprecateEof: boolean) {
    this.shape = shape;
    this.deprecateEof = deprecateEof;
    // Column definitions until EOF: their number is not announced.
    if (shape === 'field-list')
      this.phase = { kind: 'definitions', remaining: Number.POSITIVE_INFINITY, next: { kind: 'done' } };
  }

  get done(): boolean {
    return this.phase.kind === 'done';
  }

  /** True when the packet must be read by `read`; otherwise the tracker has accounted for it. */
  classify(first: number, length: number): boolean {
    const phase = this.phase;
    this.lastAccounted =
      phase.kind === 'definitions' ? 'definition' : phase.kind === 'rows' ? 'row' : undefined;
    switch (phase.kind) {
      case 'head':
      case 'eof':
      case 'done':
        return true;
      case 'definitions':
        if (this.shape === 'field-list') return first === 0xfe || first === 0xff;
        phase.remaining--;
        if (phase.remaining <= 0) this.phase = phase.next;
        return false;
      case 'rows':
        if (first === 0xff || (first === 0xfe && length < 0xffffff)) return true;
        phase.count++;
        return false;
    }
  }

  /**
   * Reads a packet `classify` asked for (or one that arrives after the answer is complete, which it
   * ignores). Returns the end of a result when this packet ends one, and the
   * statement id when it is a COM_STMT_PREPARE's OK.
   */
  read(payload: Buffer): { end?: ResultEnd; prepared?: PreparedOk; localInfile?: string } {
    const phase = this.phase;
    const first = payload[0];
    if (phase.kind === 'done') return {};
    if (first === 0xff && phase.kind !== 'definitions') return { end: this.finish(errorEnd(payload)) };
    switch (this.shape) {
      case 'single':
        this.phase = { kind: 'done' };
        return {
          end: { ok: true, status: first === 0x00 ? okFields(payload).status : undefined, last: true },
        };
      case 'field-list':
        if (first === 0xff) return { end: this.finish(errorEnd(payload)) };
        this.phase = { kind: 'done' };
        return { end: { ok: true, status: undefined, last: true } };
      case 'prepare': {
        if (phase.kind !== 'head') {
          // An EOF after a definition block.
          this.phase = phase.kind === 'eof' ? phase.next : { kind: 'done' };
          return this.phase.kind === 'done' ? { end: { ok: true, status: undefined, last: true } } : {};
        }
        const r = new PayloadReader(payload, 1);
        const statementId = r.u32();
        const columns = r.u16();
        const params = r.u16();
        let next: Phase = { kind: 'done' };
        if (columns > 0) next = this.definitions(columns, next);
        if (params > 0) next = this.definitions(params, next);
        this.phase = next;
        return {
          prepared: { statementId, params },
          ...(next.kind === 'done' && { end: { ok: true, status: undefined, last: true } }),
        };
      }
      case 'results':
        // LOAD DATA LOCAL: the server asks the client for a file; its OK or ERR follows the upload.
        if (phase.kind === 'head' && first === 0xfb) return { localInfile: payload.toString('utf8', 1) };
        return { end: this.readResults(phase, payload) };
    }
  }

  private readResults(phase: Phase, payload: Buffer): ResultEnd | undefined {
    const first = payload[0];
    if (phase.kind === 'head') {
      if (first === 0x00) {
        const ok = okFields(payload);
        return this.endResult({ ok: true, rows: ok.affectedRows, status: ok.status, last: false });
      }
      const columns = new PayloadReader(payload).lenenc();
      this.phase = this.definitions(columns, { kind: 'rows', count: 0 });
      return undefined;
    }
    if (phase.kind === 'eof') {
      this.phase = phase.next;
      return undefined;
    }
    if (phase.kind === 'rows') {
      const status = this.deprecateEof ? okFields(payload).status : eofStatus(payload);
      return this.endResult({ ok: true, rows: phase.count, status, last: false });
    }
    return undefined;
  }

  private definitions(count: number, next: Phase): Phase {
    const after: Phase = this.deprecateEof ? next : { kind: 'eof', next };
    return count > 0 ? { kind: 'definitions', remaining: count, next: after } : after;
  }

  private endResult(end: ResultEnd): ResultEnd {
    this.resultIndex++;
    const more = ((end.status ?? 0) & ServerStatus.MORE_RESULTS_EXISTS) !== 0;
    this.phase = more ? { kind: 'head' } : { kind: 'done' };
    return { ...end, last: !more };
  }

  private finish(end: ResultEnd): ResultEnd {
    this.phase = { kind: 'done' };
    return end;
  }
}

export function okFields(payload: Buffer): { affectedRows: number; status: number } {
  const r = new PayloadReader(payload, 1);
  const affectedRows = r.lenenc();
  r.lenenc();
  return { affectedRows, status: r.remaining >= 2 ? r.u16() : 0 };
}

function eofStatus(payload: Buffer): number {
  return payload.length >= 5 ? payload.readUInt16LE(3) : 0;
}

function errorEnd(payload: Buffer): ResultEnd {
  const code = payload.length >= 3 ? payload.readUInt16LE(1) : 0;
  const sqlstate = payload.length >= 9 && payload[3] === 0x23 ? payload.toString('ascii', 4, 9) : undefined;
  return { ok: false, errorCode: code, ...(sqlstate && { sqlstate }), status: undefined, last: true };
}
