import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { NotifyTargetSpec } from '../../../crds/guardrail.ts';
import type { ApprovalChange, ApprovalEvent } from './approval-book.ts';
import type { ApprovalRequest, ApprovalRule } from './approval-request.ts';
import { slackDecisionMessage, slackMessage, webhookMessage } from './notify.ts';

/** Where a standalone proxy reads `urlSecretRef` targets: `$GATEHOUSE_NOTIFY_SECRETS_DIR/NAME/KEY`. */
export const NOTIFY_SECRETS_DIR_ENV = 'GATEHOUSE_NOTIFY_SECRETS_DIR';

/** What a delivery came to, for the metric. */
export type DeliveryOutcome = 'sent' | 'failed' | 'skipped';

export interface DeliveryOptions {
  readonly send?: typeof fetch;
  /** Counts each delivery's outcome (gatehouse_approval_notifications_total). */
  readonly count?: (type: NotifyTargetSpec['type'], outcome: DeliveryOutcome) => void;
  /** Where `urlSecretRef` targets are read; default: $GATEHOUSE_NOTIFY_SECRETS_DIR. */
  readonly secretsDir?: string;
  /** Each attempt is abandoned after this long (default 5 s). */
  readonly timeoutMs?: number;
  /** Waits before the second and later attempts (default 0.5 s, 2 s: three attempts in all). */
  readonly backoffMs?: readonly number[];
  /**
   * Which targets this sender serves: all (a standalone proxy), those with a `url` (a sidecar in a
   * cluster, which has no Secrets), or those with a `urlSecretRef` (the operator, which reads them).
   */
  readonly targets?: 'all' | 'url' | 'urlSecretRef';
  /** Reads a `urlSecretRef` target's URL (default: the file NAME/KEY below `secretsDir`). */
  readonly secretUrl?: (
    ref: NonNullable<NotifyTargetSpec['urlSecretRef']>,
    rule: ApprovalRule,
  ) => Promise<{ url: string } | { problem: string }>;
}

const DECIDED: ReadonlySet<ApprovalEvent> = new Set(['approved', 'denied', 'expired']);

/** Kubernetes' own rule for a Secret's keys: no path can be made of one. */
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/**
 * Announces each new request to its rules' `notify` targets, and each decision to those with
 * `onDecision`, in the background: the held statement's session never waits on a delivery. Each
 * delivery is tried a few times with backoff (a refused or unreachable endpoint, a timeout, a 5xx or
 * 429 answer); what finally fails is logged at warn with the endpoint's origin only (an
 * incoming-webhook URL's path is its secret) and never with the statement.
 */
export function announceRequests(
  logger: Logger,
  options: DeliveryOptions = {},
): (change: ApprovalChange) => void {
  return ({ event, request }) => {
    if (event !== 'requested' && !DECIDED.has(event)) return;
    const serves = options.targets ?? 'all';
    for (const rule of request.rules) {
      for (const target of rule.notify ?? []) {
        if (event !== 'requested' && target.onDecision !== true) continue;
        if (serves !== 'all' && (target.urlSecretRef === undefined) !== (serves === 'url')) continue;
        // After the session has told its client, never before: the delivery starts on a later turn.
        setImmediate(() => {
          deliver(target, rule, request, logger, options).catch((error: unknown) =>
            logger.error({ request: request.id, err: (error as Error).name }, 'approval notification broke'),
          );
        });
      }
    }
  };
}

async function deliver(
  target: NotifyTargetSpec,
  rule: ApprovalRule,
  request: ApprovalRequest,
  logger: Logger,
  options: DeliveryOptions,
): Promise<void> {
  const count = options.count ?? (() => {});
  const log = { request: request.id, type: target.type, phase: request.phase };
  const url = await targetUrl(target, rule, options);
  if ('problem' in url) {
    logger.warn(log, `approval notification skipped: ${url.problem}`);
    count(target.type, 'skipped');
    return;
  }
  const body = JSON.stringify(
    target.type === 'webhook'
      ? webhookMessage(request)
      : request.phase === 'Pending'
        ? slackMessage(request)
        : slackDecisionMessage(request),
  );
  const where = url.url.origin;
  const send = options.send ?? fetch;
  const backoff = options.backoffMs ?? [500, 2000];
  let failure = '';
  for (let attempt = 0; attempt <= backoff.length; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, backoff[attempt - 1]).unref());
    try {
      const response = await send(url.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
      });
      await response.body?.cancel();
      if (response.ok) {
        logger.debug({ ...log, target: where, attempts: attempt + 1 }, 'approval notification sent');
        count(target.type, 'sent');
        return;
      }
      failure = `answered ${response.status}`;
      // A 4xx other than 429 says the message or the URL is wrong: sending it again cannot help.
      if (response.status < 500 && response.status !== 429) break;
    } catch (error) {
      // Never the error's own text: undici's may quote the URL.
      failure = (error as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable';
    }
  }
  logger.warn({ ...log, target: where, failure }, `approval notification failed: ${where} ${failure}`);
  count(target.type, 'failed');
}

/** The target's URL: given, or read from its Secret's file; a problem says why not (never the value). */
async function targetUrl(
  target: NotifyTargetSpec,
  rule: ApprovalRule,
  options: DeliveryOptions,
): Promise<{ url: URL } | { problem: string }> {
  let text = target.url;
  if (text === undefined) {
    const ref = target.urlSecretRef;
    if (!ref) return { problem: 'the target has neither url nor urlSecretRef' };
    if (!SECRET_KEY.test(ref.key) || ref.key === '.' || ref.key === '..' || !SECRET_KEY.test(ref.name))
      return { problem: `urlSecretRef ${ref.name}/${ref.key} is not a Secret name and key` };
    const read = await (options.secretUrl ?? secretFileUrl(options.secretsDir))(ref, rule);
    if ('problem' in read) return read;
    text = read.url.trim();
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: 'the URL does not parse' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: 'the URL is not http(s)' };
  return { url };
}

/** A standalone proxy's `urlSecretRef`: the file NAME/KEY below the secrets directory. */
function secretFileUrl(
  dir: string | undefined = process.env[NOTIFY_SECRETS_DIR_ENV],
): NonNullable<DeliveryOptions['secretUrl']> {
  return async (ref) => {
    const named = `urlSecretRef ${ref.name}/${ref.key}`;
    if (!dir)
      return { problem: `${named} needs ${NOTIFY_SECRETS_DIR_ENV}, the directory that holds NAME/KEY files` };
    try {
      return { url: await readFile(join(dir, ref.name, ref.key), 'utf8') };
    } catch (error) {
      return { problem: `${named} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  };
}
