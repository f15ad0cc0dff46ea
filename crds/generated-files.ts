import { stringify } from 'yaml';
import { API_GROUP } from './common.ts';
import { API_KINDS, customResourceDefinition } from './custom-resource-definitions.ts';

/** A file that `npm run gen` writes, relative to the repository root. */
export type GeneratedFile = { path: string; content: string };

const HEADER =
  '# Generated from crds/*.ts by `npm run gen`. Do not edit: change the schema and run it again.\n';

/**
 * The CRD YAML of every kind, once under crds/generated (what people read and `kubectl apply`) and
 * once in the chart's crds/ folder (what `helm install` applies before the templates).
 */
export function crdFiles(): GeneratedFile[] {
  return API_KINDS.flatMap((apiKind) => {
    const content = HEADER + stringify(customResourceDefinition(apiKind), { lineWidth: 0 });
    const file = `${apiKind.plural}.${API_GROUP}.yaml`;
    return [
      { path: `crds/generated/${file}`, content },
      { path: `charts/gatehouse/crds/${file}`, content },
    ];
  });
}
