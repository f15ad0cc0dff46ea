/** The API server's release, as numbers: what decides between a native and a plain sidecar. */
export type ServerVersion = { major: number; minor: number };

/** Native sidecars (init containers with `restartPolicy: Always`) are on by default from 1.29. */
export function supportsNativeSidecars(version: ServerVersion): boolean {
  return version.major > 1 || (version.major === 1 && version.minor >= 29);
}

/**
 * Reads the API server's /version answer. Providers append to the minor version ("29+"), so only
 * the leading digits count; gitVersion ("v1.29.3-gke.1") is the fallback.
 */
export function parseServerVersion(info: {
  major?: string;
  minor?: string;
  gitVersion?: string;
}): ServerVersion {
  const major = Number.parseInt(info.major ?? '', 10);
  const minor = Number.parseInt(info.minor ?? '', 10);
  if (Number.isInteger(major) && Number.isInteger(minor)) return { major, minor };
  const match = /^v?(\d+)\.(\d+)/.exec(info.gitVersion ?? '');
  if (match === null) throw new Error(`cannot read a Kubernetes version from ${JSON.stringify(info)}`);
  return { major: Number(match[1]), minor: Number(match[2]) };
}
