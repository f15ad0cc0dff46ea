/**
 * Whether a URL that hands out keys or tokens may be used: https anywhere, http only on this
 * machine. Anything fetched in clear from further away could be swapped by anyone on the path, and
 * with it every identity.
 */
export function isHttpsOrLoopback(url: URL): boolean {
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
}

export const HTTPS_OR_LOOPBACK = 'an https:// URL (http:// only for 127.0.0.1, [::1] or localhost)';
