import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import {
  MAX_WAIT_SECONDS,
  NewApprovalRequest,
  OPERATOR_APPROVALS_PREFIX,
  RestoreApprovals,
} from '../../../sidecar/src/approvals/operator-protocol.ts';
import type { ApprovalRequests } from './approval-requests.ts';
import {
  type CallerScope,
  databaseRefusal,
  type GatewayCallers,
  gatewayRequestRefusal,
} from './gateway-callers.ts';
import type { SidecarAuthenticator, SidecarCaller } from './sidecar-auth.ts';

/** A statement is at most 256 KiB in the CRD; the rest of a request is small. */
const MAX_BODY_BYTES = 512 * 1024;

/**
 * The approvals endpoint sidecars call (operator-protocol.ts), served on the webhook's HTTPS port:
 * the sidecars already reach the operator's Service there, and its certificate is the one the
 * operator keeps current. Every call is authenticated by TokenReview of the caller's projected token;
 * a DatabaseGateway's pods are held to their gateway's DatabaseAccess (gateway-callers.ts).
 */
export function approvalsEndpoint(options: {
  requests: ApprovalRequests;
  authenticator: SidecarAuthenticator;
  gateways: GatewayCallers;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}): (request: IncomingMessage, response: ServerResponse) => void {
  const { requests, authenticator, gateways, logger } = options;
  const app = new Hono<{ Variables: { caller: SidecarCaller; scope: CallerScope } }>().basePath(
    OPERATOR_APPROVALS_PREFIX,
  );
  app.onError((error, c) => {
    logger.error({ err: error.message }, 'approvals endpoint failed');
    return problem(c, 500, 'internal', 'the operator could not serve the request; see its log');
  });
  app.notFound((c) => problem(c, 404, 'not-found', `no such route under ${OPERATOR_APPROVALS_PREFIX}`));
  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => problem(c, 413, 'invalid', `the body is over ${MAX_BODY_BYTES} bytes`),
    }),
  );
  app.use('*', async (c, next) => {
    const caller = await authenticator.authenticate(c.req.header('authorization'));
    if (!caller)
      return problem(
        c,
        401,
        'unauthenticated',
        "send Authorization: Bearer with the pod's projected gatehouse.dev token",
      );
    const scope = await gateways.scope(caller);
    if (scope.kind === 'refused') return forbidden(c, caller, scope.message);
    c.set('caller', caller);
    c.set('scope', scope);
    await next();
  });

  app.post('/', async (c) => {
    const body: unknown = await c.req.json().catch(() => undefined);
    if (!Value.Check(NewApprovalRequest, body)) return invalid(c, NewApprovalRequest, body);
    const scope = c.get('scope');
    const refusal =
      scope.kind === 'gateway' ? gatewayRequestRefusal(scope, body, c.get('caller').namespace) : undefined;
    if (refusal) return forbidden(c, c.get('caller'), refusal);
    const result = await requests.create(c.get('caller'), body);
    if (!result) return problem(c, 409, 'exists', `request ${body.id} exists and is not yours`);
    return c.json(result.view, result.created ? 201 : 200);
  });
  app.post('/restore', async (c) => {
    const body: unknown = await c.req.json().catch(() => undefined);
    if (!Value.Check(RestoreApprovals, body)) return invalid(c, RestoreApprovals, body);
    const scope = c.get('scope');
    const refusal = scope.kind === 'gateway' ? databaseRefusal(scope, body.database) : undefined;
    if (refusal) return forbidden(c, c.get('caller'), refusal);
    return c.json(await requests.restore(c.get('caller'), body));
  });
  app.get('/:id', async (c) => {
    const wait = Number(c.req.query('waitSeconds') ?? '0');
    if (!Number.isFinite(wait) || wait < 0 || wait > MAX_WAIT_SECONDS)
      return problem(c, 400, 'invalid', `waitSeconds is 0 to ${MAX_WAIT_SECONDS}`);
    const view = await requests.view(c.get('caller'), c.req.param('id'), wait * 1000);
    return view ? c.json(view) : notFound(c);
  });
  app.post('/:id/withdraw', async (c) => {
    const view = await requests.withdraw(c.get('caller'), c.req.param('id'));
    return view ? c.json(view) : notFound(c);
  });
  app.post('/:id/executed', async (c) => {
    const view = await requests.executed(c.get('caller'), c.req.param('id'));
    return view ? c.json(view) : notFound(c);
  });
  return getRequestListener(app.fetch);

  /** 403, logged: a gateway's token used beyond its gateway is worth an operator's attention. */
  function forbidden(c: Context, caller: SidecarCaller, message: string) {
    logger.warn({ caller: caller.username, refused: message }, 'approvals endpoint refused a caller');
    return problem(c, 403, 'forbidden', message);
  }
}

/** 400 naming the body's first fault against `schema`. */
function invalid(c: Context, schema: TSchema, body: unknown) {
  const first = [...Value.Errors(schema, body)][0];
  return problem(
    c,
    400,
    'invalid',
    first ? `${first.instancePath || '/'}: ${first.message}` : 'the body is not JSON',
  );
}

function notFound(c: Context) {
  return problem(c, 404, 'not-found', `there is no approval request ${c.req.param('id')} of yours`);
}

function problem(c: Context, status: ContentfulStatusCode, kind: string, message: string) {
  return c.json({ problem: kind, message }, status);
}
