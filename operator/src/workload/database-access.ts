import type { DatabaseAccessDocumentType } from '../../../crds/database-access.ts';

/**
 * What the injector reads of a DatabaseAccess: its name, namespace and spec. Objects read from the
 * API server carry more (uid, status...), which is accepted and ignored.
 */
export type DatabaseAccess = {
  metadata: DatabaseAccessDocumentType['metadata'];
  spec: DatabaseAccessDocumentType['spec'];
};
