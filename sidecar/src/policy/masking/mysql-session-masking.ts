import type { Identity } from '../../identity/identity.ts';
import { isMetadataRelation } from '../../sql/mysql/metadata-relations.ts';
import type { MaskMethod } from './mask-methods.ts';
import type { MaskingSettings } from './masking-for.ts';
import type { MaskingKey } from './masking-key.ts';
import { type AccessExemptionSource, MaskingSettingsCache } from './masking-settings-cache.ts';
import type { PiiKind } from './pii-kind.ts';
import { classifyCatalogColumn, type ExemptColumn, exemptionOf } from './sensitive-columns.ts';

/** How one column's values are masked. */
export interface ColumnMask {
  readonly method: MaskMethod;
  /** The column's classification, which shapes partial masks; null when not known. */
  readonly kind: PiiKind | null;
  /**
   * Set where a result column passes an exempt column through unchanged: the approved access request
   * that shows it in clear (row-rewrite.ts keeps such cells as they are). Code that ignores it masks
   * the column with `method`, so an exemption is never wider than what honours it.
   */
  readonly exempt?: ExemptColumn;
}

/** The MaskingPolicies that apply to one session, resolved for the columns of the catalog. */
export interface SessionMasking {
  readonly key: MaskingKey;
  /** autoDetect: scan every text value that leaves, as a second line behind lineage. */
  readonly scanValues: boolean;
  /** Every policy allows predicates (WHERE, JOIN, ORDER BY...) over masked columns. */
  readonly allowPredicates: boolean;
  /** How a catalog column is masked; undefined when it is not sensitive. */
  columnMask(schema: string, table: string, column: string): ColumnMask | undefined;
  /** The approved access request that clears this sensitive column for the identity, if any. */
  exemptionOf(schema: string, table: string, column: string): ExemptColumn | undefined;
}

/**
 * The masking of one session: the MaskingPolicies of every grant of the identity on this database,
 * less those whose exemptions name the identity (until they expire), as for PostgreSQL
 * (policy/masking/masking-for.ts, sensitive-columns.ts), worked out again when the policy changes
 * or an exemption expires (MaskingSettingsCache).
 * MySQL identifiers compare case-insensitively, so columns are classified in lower case.
 */
export function sessionMaskingCache(
  identity: Identity,
  database: string,
  key: MaskingKey,
  access?: AccessExemptionSource,
): MaskingSettingsCache<SessionMasking> {
  return new MaskingSettingsCache(identity, database, (settings) => sessionMasking(settings, key), access);
}

function sessionMasking(settings: MaskingSettings, key: MaskingKey): SessionMasking {
  const cache = new Map<string, ColumnMask | undefined>();
  const exemptions: MaskingSettings = {
    ...settings,
    exemptions: settings.exemptions.map((e) => ({ ...e, columns: e.columns.map((c) => c.toLowerCase()) })),
  };
  return {
    key,
    scanValues: settings.autoDetect,
    allowPredicates: settings.allowPredicatesOnMasked,
    columnMask(schema, table, column) {
      const id = `${schema}\u0000${table}\u0000${column}`.toLowerCase();
      if (cache.has(id)) return cache.get(id);
      // Metadata (names and definitions) is not personal data, as pg_catalog is not for PostgreSQL.
      const masking = isMetadataRelation(schema, table)
        ? undefined
        : classifyCatalogColumn(
            { schema: schema.toLowerCase(), table: table.toLowerCase(), column: column.toLowerCase() },
            settings,
          );
      const mask = masking && { method: masking.method, kind: masking.kind };
      cache.set(id, mask);
      return mask;
    },
    exemptionOf(schema, table, column) {
      if (!this.columnMask(schema, table, column)) return undefined;
      const ref = { schema: schema.toLowerCase(), table: table.toLowerCase(), column: column.toLowerCase() };
      return exemptionOf(ref, exemptions);
    },
  };
}
