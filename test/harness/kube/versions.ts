/**
 * The Kubernetes releases the operator is tested against: the newest that the installed Go builds,
 * and the last before native sidecar containers (1.29), where the sidecar must be a plain container.
 */
export const KUBE_VERSIONS = ['v1.37.2', 'v1.28.15'] as const;

export type KubeVersion = (typeof KUBE_VERSIONS)[number];

export const LATEST_KUBE_VERSION: KubeVersion = 'v1.37.2';

/** One etcd for every Kubernetes version above: the etcd v3 API they all speak is stable. */
export const ETCD_VERSION = 'v3.6.16';
