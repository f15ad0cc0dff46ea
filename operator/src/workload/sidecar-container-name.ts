import { createHash } from 'node:crypto';

const DNS_LABEL_MAX = 63;
const HASH_LENGTH = 8;

/**
 * `gatehouse-<access name>`, made a DNS label as container names must be: dots become dashes, and
 * when that changes the name or it is too long, it is cut and ends with a hash of the access name,
 * so two accesses never share a container name.
 */
export function sidecarContainerName(accessName: string): string {
  const plain = `gatehouse-${accessName}`;
  const label = plain.replaceAll('.', '-');
  if (label === plain && label.length <= DNS_LABEL_MAX) return label;
  const hash = createHash('sha256').update(accessName).digest('hex').slice(0, HASH_LENGTH);
  const head = label.slice(0, DNS_LABEL_MAX - HASH_LENGTH - 1).replace(/-+$/, '');
  return `${head}-${hash}`;
}
