import { parseTree } from '../../sql/parse-tree.ts';

/**
 * What a session's prepared statement and portal names stand for, so that every Bind, Describe and
 * Execute names something Gatehouse judged. PostgreSQL has one namespace for protocol-level
 * statements (Parse) and SQL ones (PREPARE), and one for protocol portals (Bind) and SQL cursors
 * (DECLARE): a Bind of a name made by PREPARE, or an Execute of a DECLAREd cursor, runs a query the
 * protocol never showed. Those, and names Gatehouse has not seen made, are refused here; SQL-made
 * ones are run with EXECUTE and FETCH, which are judged by what they run.
 *
 * The tracking follows the server, never runs ahead of it where that could let a name stand for a
 * different query than the server's:
 * - A name is added when the message or statement that makes it is judged (the server may then
 *   fail to make it: a stale name only causes refusals), but a name already in use is refused
 *   (SQL) or held back until the server confirms it replaced it (protocol), because the server
 *   keeps the old one when it refuses the new.
 * - A name is removed (DEALLOCATE, CLOSE, DISCARD ALL, Close) only once the server confirms the
 *   statement or message that removes it ran: a removal the server skipped would otherwise let a
 *   new definition of the name be judged while the server keeps the old.
 * - Portals and cursors without HOLD end with their transaction, which ReadyForQuery reports.
 */
export class SessionNames<Statement, Portal> {
  private readonly statements = new Map<string, Statement>();
  private readonly portals = new Map<string, { portal: Portal; stamp: number }>();
  private readonly sqlPrepared = new Set<string>();
  /**
   * SQL cursors: when each was made, and whether it is WITH HOLD and known committed (a WITH HOLD
   * cursor outlives its transaction only if that commits).
   */
  private readonly sqlCursors = new Map<string, { holdable: boolean; stamp: number; committed?: boolean }>();
  /** Counts the client's messages: what was made before a transaction ended ended with it. */
  private clock = 0;
  /** The stamps of the Query, Sync and FunctionCall messages not yet answered by ReadyForQuery. */
  private readonly syncs: number[] = [];

  /** The stamp of the client message now being read; call before judging it. */
  stamp(): number {
    return ++this.clock;
  }

  /** A Query, Sync or FunctionCall went upstream. A Query also drops the unnamed statement and portal. */
  synced(query: boolean): void {
    this.syncs.push(this.stamp());
    if (query) {
      this.statements.delete('');
      this.portals.delete('');
    }
  }

  /** ReadyForQuery: outside a transaction block, every portal and cursor without HOLD made before its message is gone. */
  ready(status: 'I' | 'T' | 'E'): void {
    const stamp = this.syncs.shift();
    // Whether the transaction committed is not told; a cursor kept that is gone only causes refusals.
    if (status === 'I' && stamp !== undefined) this.transactionEnded(stamp, false);
  }

  /**
   * A transaction ended in the message stamped `stamp`: portals and cursors made before it are gone,
   * but WITH HOLD cursors of a transaction that committed.
   */
  private transactionEnded(stamp: number, rolledBack: boolean): void {
    for (const [name, entry] of this.portals) if (entry.stamp < stamp) this.portals.delete(name);
    for (const [name, cursor] of this.sqlCursors) {
      if (cursor.stamp >= stamp || cursor.committed) continue;
      if (!cursor.holdable || rolledBack) this.sqlCursors.delete(name);
      else cursor.committed = true;
    }
  }

  /** The protocol statement `name`, or why it may not be used. */
  statement(name: string): Statement | NameRefusal {
    const found = this.statements.get(name);
    if (found !== undefined) return found;
    return this.sqlPrepared.has(name)
      ? refusal(
          '26000',
          `Gatehouse: the prepared statement "${name}" was made by SQL PREPARE; run it with EXECUTE, or prepare it with a protocol Parse`,
        )
      : refusal('26000', `Gatehouse: prepared statement "${name}" is not one Gatehouse saw prepared`);
  }

  /** The protocol portal `name`, or why it may not be used. */
  portal(name: string): Portal | NameRefusal {
    const found = this.portals.get(name);
    if (found !== undefined) return found.portal;
    return this.sqlCursors.has(name)
      ? refusal(
          '34000',
          `Gatehouse: the portal "${name}" is a cursor made by SQL DECLARE; read it with FETCH`,
        )
      : refusal('34000', `Gatehouse: portal "${name}" is not one Gatehouse saw bound`);
  }

  /** A Parse the proxy forwards. Returns what the server's answer settles. */
  parse(name: string, statement: Statement): Settlement {
    if (this.sqlPrepared.has(name))
      return {
        refusal: refusal(
          '42P05',
          `Gatehouse: prepared statement "${name}" already exists (made by SQL PREPARE)`,
        ),
      };
    return this.replace(this.statements, name, statement);
  }

  /** A Bind the proxy forwards, of a statement `statement()` returned. */
  bind(name: string, portal: Portal): Settlement {
    if (this.sqlCursors.has(name))
      return {
        refusal: refusal('42P03', `Gatehouse: cursor "${name}" already exists (made by SQL DECLARE)`),
      };
    return this.replace(this.portals, name, { portal, stamp: this.stamp() });
  }

  /** A Close: forgotten at once in every namespace it may name, restored if the server skips it. */
  close(kind: 'S' | 'P', name: string): Settlement {
    if (kind === 'S') {
      const statement = this.statements.get(name);
      const sql = this.sqlPrepared.has(name);
      this.statements.delete(name);
      this.sqlPrepared.delete(name);
      return {
        undo: () => {
          if (statement !== undefined) this.statements.set(name, statement);
          if (sql) this.sqlPrepared.add(name);
        },
      };
    }
    const portal = this.portals.get(name);
    const cursor = this.sqlCursors.get(name);
    this.portals.delete(name);
    this.sqlCursors.delete(name);
    return {
      undo: () => {
        if (portal) this.portals.set(name, portal);
        if (cursor) this.sqlCursors.set(name, cursor);
      },
    };
  }

  /**
   * Why a SQL text may not make the names it makes: a name in use (the server would refuse it too,
   * and keep the old one, while the analysis would take the new). Asked before the text is judged.
   */
  sqlConflict(effects: readonly (SqlNameEffect | undefined)[]): NameRefusal | undefined {
    const made = new Set<string>();
    for (const effect of effects) {
      const prepares = effect?.prepares;
      if (prepares !== undefined && (this.isStatement(prepares) || made.has(`S${prepares}`)))
        return refusal('42P05', `Gatehouse: prepared statement "${prepares}" already exists`);
      const declares = effect?.declares?.name;
      if (declares !== undefined && (this.isPortal(declares) || made.has(`P${declares}`)))
        return refusal('42P03', `Gatehouse: cursor "${declares}" already exists`);
      const fetches = effect?.fetches;
      if (fetches !== undefined && this.portals.has(fetches))
        return refusal(
          '34000',
          `Gatehouse: the portal "${fetches}" was bound through the protocol; read it with Execute, not FETCH`,
        );
      if (prepares !== undefined) made.add(`S${prepares}`);
      if (declares !== undefined) made.add(`P${declares}`);
    }
    return undefined;
  }

  /** A SQL text allowed to run: the names its PREPAREs and DECLAREs make are taken now. */
  admitSql(effects: readonly (SqlNameEffect | undefined)[]): void {
    for (const effect of effects) {
      if (effect === undefined) continue;
      if (effect.prepares !== undefined) this.sqlPrepared.add(effect.prepares);
      if (effect.declares !== undefined)
        this.sqlCursors.set(effect.declares.name, {
          holdable: effect.declares.holdable,
          stamp: this.stamp(),
        });
    }
  }

  /**
   * The server completed a SQL statement of the message stamped `stamp`, with the command tag
   * `command`: what it removed is gone.
   */
  completedSql(effect: SqlNameEffect | undefined, stamp: number, command: string): void {
    if (!effect) return;
    // COMMIT of a failed transaction rolls it back, and says so.
    if (effect.endsTransaction) this.transactionEnded(stamp, command === 'ROLLBACK');
    if (effect.deallocates === null) {
      this.statements.clear();
      this.sqlPrepared.clear();
    } else if (effect.deallocates !== undefined) {
      this.statements.delete(effect.deallocates);
      this.sqlPrepared.delete(effect.deallocates);
    }
    if (effect.closes === null) {
      this.portals.clear();
      this.sqlCursors.clear();
    } else if (effect.closes !== undefined) {
      this.portals.delete(effect.closes);
      this.sqlCursors.delete(effect.closes);
    }
  }

  private isStatement(name: string): boolean {
    return this.statements.has(name) || this.sqlPrepared.has(name);
  }

  private isPortal(name: string): boolean {
    return this.portals.has(name) || this.sqlCursors.has(name);
  }

  /**
   * A new definition of a protocol name. A new name (or the unnamed one, which the server drops
   * before it parses or binds the new) is taken at once and forgotten if the server fails; a named
   * one in use is unknown until the server answers: it refuses a second definition and keeps the
   * first, unless the first is gone in a way Gatehouse did not see.
   */
  private replace<T>(map: Map<string, T>, name: string, value: T): Settlement {
    const previous = map.get(name);
    if (name === '' || previous === undefined) {
      map.set(name, value);
      return { undo: () => map.delete(name) };
    }
    map.delete(name);
    return { done: () => map.set(name, value), undo: () => map.set(name, previous) };
  }
}

export interface NameRefusal {
  readonly nameRefusal: true;
  readonly code: string;
  readonly message: string;
}

function refusal(code: string, message: string): NameRefusal {
  return { nameRefusal: true, code, message };
}

export function isNameRefusal(value: unknown): value is NameRefusal {
  return typeof value === 'object' && value !== null && 'nameRefusal' in value;
}

/** What the server's answer to a message settles: `done` on its completion, `undo` if it fails or is skipped. */
export interface Settlement {
  readonly refusal?: NameRefusal;
  readonly done?: () => void;
  readonly undo?: () => void;
}

/** The names one top-level SQL statement makes or removes (null: all of them). */
export interface SqlNameEffect {
  readonly prepares?: string;
  readonly declares?: { readonly name: string; readonly holdable: boolean };
  readonly deallocates?: string | null;
  readonly closes?: string | null;
  /** FETCH or MOVE: the cursor it reads. */
  readonly fetches?: string;
  /** COMMIT, ROLLBACK (not to a savepoint), PREPARE TRANSACTION: portals and cursors without HOLD end. */
  readonly endsTransaction?: boolean;
}

const ENDING_TRANSACTION = new Set(['TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK', 'TRANS_STMT_PREPARE']);

const CURSOR_OPT_HOLD = 0x0020;

/** Per top-level statement of `sql`, the names it makes or removes; empty when it names none. */
export function sqlNameEffects(sql: string): readonly (SqlNameEffect | undefined)[] {
  // Each of these statements starts with its keyword, which no escape can spell.
  if (!/\b(prepare|deallocate|declare|close|discard|commit|rollback|end|abort|fetch|move)\b/i.test(sql))
    return [];
  const stmts = parseTree(sql);
  if (typeof stmts === 'string') return [];
  return stmts.map((raw) => {
    const stmt = raw.stmt as Record<string, Record<string, unknown> | undefined> | undefined;
    if (!stmt) return undefined;
    if (stmt['PrepareStmt']) return { prepares: String(stmt['PrepareStmt']['name'] ?? '') };
    if (stmt['DeclareCursorStmt']) {
      const declare = stmt['DeclareCursorStmt'];
      return {
        declares: {
          name: String(declare['portalname'] ?? ''),
          holdable: (((declare['options'] as number | undefined) ?? 0) & CURSOR_OPT_HOLD) !== 0,
        },
      };
    }
    if (stmt['DeallocateStmt']) {
      const name = stmt['DeallocateStmt']['name'];
      return { deallocates: typeof name === 'string' ? name : null };
    }
    if (stmt['ClosePortalStmt']) {
      const name = stmt['ClosePortalStmt']['portalname'];
      return { closes: typeof name === 'string' ? name : null };
    }
    if (stmt['FetchStmt']) return { fetches: String(stmt['FetchStmt']['portalname'] ?? '') };
    if (stmt['DiscardStmt']?.['target'] === 'DISCARD_ALL') return { deallocates: null, closes: null };
    if (ENDING_TRANSACTION.has(String(stmt['TransactionStmt']?.['kind']))) return { endsTransaction: true };
    return undefined;
  });
}
