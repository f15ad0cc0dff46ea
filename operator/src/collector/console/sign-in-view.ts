import { html } from 'hono/html';
import { BASE, type Html, page, problemBox } from './layout.ts';

/** The sign-in page: a local user's name and password, and a Kubernetes token where TokenReview is on. */
export function signInPage(options: {
  next: string;
  local: boolean;
  token: boolean;
  oidc: boolean;
  problem?: string;
}): Html {
  const { next, local, token, oidc, problem } = options;
  return page({
    title: 'Sign in',
    body: html`${problem ? problemBox(problem) : ''}
${oidc ? html`<p class="sign-in"><a class="button" href="${BASE}/oidc/start?next=${encodeURIComponent(next)}">Sign in with your identity provider</a></p>` : ''}
${
  local
    ? html`<form class="sign-in" method="post" action="${BASE}/sign-in">
<input type="hidden" name="method" value="local"><input type="hidden" name="next" value="${next}">
<h2>Local user</h2>
<label>User<input name="user" autocomplete="username" required></label>
<label>Password<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>`
    : ''
}
${
  token
    ? html`<form class="sign-in" method="post" action="${BASE}/sign-in">
<input type="hidden" name="method" value="token"><input type="hidden" name="next" value="${next}">
<h2>Kubernetes token</h2>
<label>Token (<code>kubectl create token NAME</code>)<textarea name="token" required autocomplete="off"></textarea></label>
<button type="submit">Sign in</button>
</form>`
    : ''
}
${local || token || oidc ? '' : html`<p class="problem">This collector has no way to sign in: configure auth.localUsers, auth.tokenReview or console.oidc.</p>`}`,
  });
}
