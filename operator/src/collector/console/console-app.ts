import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import type { Authenticator } from '../../../../sidecar/src/identity/identity.ts';
import type { TokenReviewer } from '../collector-auth.ts';
import { registerApprovalsDecide } from './approvals-decide.ts';
import { registerApprovalsView } from './approvals-view.ts';
import type { ConsoleDeps, ConsoleEnv } from './console-env.ts';
import type { OidcSignIn } from './console-oidc.ts';
import { csrfMatches, SESSION_COOKIE } from './console-sessions.ts';
import { type ConsoleAccess, type SignIn, signInLocal, signInToken } from './console-sign-in.ts';
import { CONSOLE_CSS } from './console-style.ts';
import { registerIntegrityView } from './integrity-view.ts';
import { BASE, page } from './layout.ts';
import { registerSessionDetailView } from './session-detail-view.ts';
import { registerSessionsView } from './sessions-view.ts';
import { signInPage } from './sign-in-view.ts';
import { registerStatementsView } from './statements-view.ts';
import { registerTouchedView } from './touched-view.ts';

export interface ConsoleOptions extends ConsoleDeps {
  readonly access: ConsoleAccess;
  readonly localUsers: Authenticator | undefined;
  readonly tokenReviewer: TokenReviewer | undefined;
  readonly oidc?: OidcSignIn | undefined;
}

/** Binds an OpenID sign-in's state to the browser that started it. */
const OIDC_COOKIE = 'gatehouse_oidc';

/**
 * No script runs on any page (there is none), styles come only from the console's own stylesheet,
 * and no page may be framed: a statement text that smuggled markup past the escaping could still do
 * nothing.
 */
const CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The web console, mounted at /console by the collector's API app. */
export function consoleApp(options: ConsoleOptions): Hono<ConsoleEnv> {
  const { sessions, logger } = options;
  const app = new Hono<ConsoleEnv>();

  app.use('*', async (c, next) => {
    await next();
    c.header('content-security-policy', CSP);
    c.header('x-content-type-options', 'nosniff');
    c.header('x-frame-options', 'DENY');
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on our own forms.
    c.header('referrer-policy', 'same-origin');
    c.header('cache-control', 'no-store');
  });
  app.onError((error, c) => {
    logger.error({ err: error.message, path: c.req.path }, 'console page failed');
    return c.html(
      page({
        title: 'Something failed',
        body: html`<p class="problem">The collector failed; see its log.</p>`,
      }),
      500,
    );
  });
  app.notFound((c) =>
    c.html(page({ title: 'Not found', body: html`<p class="empty">No such page.</p>` }), 404),
  );

  // A POST from another origin is refused before anything else, sign-in included (login CSRF).
  app.use('*', async (c, next) => {
    if (c.req.method === 'POST') {
      const origin = c.req.header('origin');
      if (origin !== undefined && origin !== new URL(c.req.url).origin)
        return c.text('a form of another origin may not post here', 403);
    }
    await next();
  });

  app.get('/console.css', (c) => {
    c.header('content-type', 'text/css; charset=utf-8');
    return c.body(CONSOLE_CSS);
  });

  const signInOptions = {
    local: options.localUsers !== undefined,
    token: options.tokenReviewer !== undefined,
    oidc: options.oidc !== undefined,
  };
  const secure = (c: Context) => new URL(c.req.url).protocol === 'https:';
  /** Starts a session for someone who proved who they are, or says why they may not have one. */
  const establish = async (c: Context, proven: SignIn, next: string, method: string) => {
    let outcome = proven;
    if ('subject' in outcome && outcome.roles.length === 0)
      outcome = { refused: `${outcome.subject} may not read the audit (console.viewers)` };
    if ('refused' in outcome) {
      logger.info({ method, problem: outcome.refused }, 'console sign-in refused');
      return c.html(signInPage({ ...signInOptions, next, problem: outcome.refused }), 401);
    }
    const { id } = await sessions.create(outcome);
    logger.info(
      { subject: outcome.subject, roles: outcome.roles, method: outcome.method },
      'console sign-in',
    );
    setCookie(c, SESSION_COOKIE, id, {
      path: BASE,
      httpOnly: true,
      sameSite: 'Lax',
      secure: secure(c),
      maxAge: sessions.ttlSeconds,
    });
    return c.redirect(next, 303);
  };
  app.get('/sign-in', (c) => c.html(signInPage({ ...signInOptions, next: safeNext(c.req.query('next')) })));
  app.post('/sign-in', async (c) => {
    const form = await c.req.parseBody();
    const next = safeNext(typeof form['next'] === 'string' ? form['next'] : undefined);
    const field = (name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');
    let outcome: SignIn;
    if (form['method'] === 'local')
      outcome = await signInLocal(options.localUsers, options.access, field('user'), field('password'));
    else if (form['method'] === 'token')
      outcome = await signInToken(options.tokenReviewer, options.access, field('token').trim());
    else outcome = { refused: 'choose how to sign in' };
    return establish(c, outcome, next, String(form['method']));
  });

  const oidc = options.oidc;
  if (oidc) {
    app.get('/oidc/start', async (c) => {
      const next = safeNext(c.req.query('next'));
      let started: { url: string; state: string };
      try {
        started = await oidc.start(next);
      } catch (error) {
        logger.warn({ err: (error as Error).message }, 'OpenID sign-in could not start');
        return c.html(signInPage({ ...signInOptions, next, problem: (error as Error).message }), 502);
      }
      setCookie(c, OIDC_COOKIE, started.state, {
        path: `${BASE}/oidc`,
        httpOnly: true,
        // Lax: the provider sends the browser back by a top-level GET from its own site.
        sameSite: 'Lax',
        secure: secure(c),
        maxAge: 600,
      });
      return c.redirect(started.url, 303);
    });
    app.get('/oidc/callback', async (c) => {
      const bound = getCookie(c, OIDC_COOKIE);
      deleteCookie(c, OIDC_COOKIE, { path: `${BASE}/oidc` });
      const { outcome, next } = await oidc.finish(new URL(c.req.url).searchParams, bound);
      return establish(c, outcome, next, 'oidc');
    });
  }

  // Everything below needs a session; a POST also the session's CSRF token.
  app.use('*', async (c, next) => {
    const session = await sessions.get(getCookie(c, SESSION_COOKIE));
    if (!session) {
      if (c.req.method !== 'GET') return c.text('sign in first', 401);
      const url = new URL(c.req.url);
      return c.redirect(`${BASE}/sign-in?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
    }
    if (c.req.method === 'POST') {
      const form = await c.req.parseBody();
      if (!csrfMatches(session, form['csrf']))
        return c.text('the form is stale or not ours: reload the page', 403);
    }
    c.set('session', session);
    await next();
  });
  app.post('/sign-out', async (c) => {
    await sessions.delete(getCookie(c, SESSION_COOKIE));
    deleteCookie(c, SESSION_COOKIE, { path: BASE });
    return c.redirect(`${BASE}/sign-in`, 303);
  });
  app.get('/', (c) => c.redirect(`${BASE}/sessions`, 303));

  registerSessionsView(app, options);
  registerSessionDetailView(app, options);
  registerStatementsView(app, options);
  registerTouchedView(app, options);
  registerApprovalsView(app, options);
  registerApprovalsDecide(app, options);
  registerIntegrityView(app, options);
  return app;
}

/** Where to go after signing in: a console path only, never another site (`//evil`, `/\evil`). */
function safeNext(next: string | undefined): string {
  if (next === undefined || !next.startsWith(`${BASE}/`) || /[\\\s]|^\/\/|\/\//.test(next)) return `${BASE}/`;
  return next;
}
