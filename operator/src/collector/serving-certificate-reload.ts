import { readFileSync } from 'node:fs';
import type { Server } from 'node:https';
import type { Logger } from 'pino';
import { watchFileContent } from '../../../sidecar/src/config/file-watch.ts';

/**
 * Serves a renewed certificate without a restart: the operator (or cert-manager) renews the Secret
 * the collector mounts, the kubelet swaps the files in place, and new connections get the new pair.
 * A pair that does not load (the key of one renewal with the certificate of another, caught halfway)
 * keeps the current one and is logged; the next change of either file tries again.
 */
export function reloadServingCertificate(
  server: Server,
  files: { readonly certFile: string; readonly keyFile: string },
  logger: Pick<Logger, 'info' | 'error'>,
  options: { pollMs?: number; debounceMs?: number } = {},
): () => void {
  const reload = () => {
    try {
      server.setSecureContext({ cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) });
      logger.info({ certFile: files.certFile }, 'serving the renewed TLS certificate');
    } catch (error) {
      logger.error(
        { err: (error as Error).message, certFile: files.certFile },
        'the renewed TLS certificate does not load; still serving the previous one',
      );
    }
  };
  const stops = [files.certFile, files.keyFile].map((file) => watchFileContent(file, reload, options));
  return () => {
    for (const stop of stops) stop();
  };
}
