import type { Logger } from 'pino';

/**
 * Resolves once SIGTERM or SIGINT has stopped what runs: the first signal calls `stop` (a graceful
 * shutdown), a second one exits at once. Resolves with false when `stop` failed (logged).
 */
export function untilSignal(logger: Logger, stop: () => Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'signal received');
      stop().then(
        () => resolve(true),
        (error: unknown) => {
          logger.error({ err: String(error) }, 'error during shutdown');
          resolve(false);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
