/**
 * The browser side of passkeys, served by the gateway itself (no CDN): @simplewebauthn/browser's
 * UMD bundle from node_modules as /auth/assets/webauthn.js, and our small script,
 * /auth/assets/passkeys.js, which drives it from the account page (add a passkey), the sign-in
 * page ("Sign in with a passkey") and the second-factor page (answer with a passkey). Both are
 * files, so that the pages' Content-Security-Policy allows scripts from 'self' only.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'

/**
 * @simplewebauthn/browser's bundle. Its package exports do not list it, so it is found by
 * walking up from the package's main file (script/index.js, beside a package.json of its own).
 */
function readBrowserBundle(): string {
  const require = createRequire(import.meta.url)
  let dir = path.dirname(require.resolve('@simplewebauthn/browser'))
  for (;;) {
    try {
      return readFileSync(path.join(dir, 'dist', 'bundle', 'index.umd.min.js'), 'utf8')
    } catch (err) {
      const parent = path.dirname(dir)
      if (parent === dir || path.basename(dir) === 'node_modules') throw err
      dir = parent
    }
  }
}

/**
 * Progressive enhancement: every passkey control is `hidden` in the HTML and shown here only
 * when the browser supports WebAuthn. Errors are written into the page's `[data-passkey-error]`
 * element (role=alert). No inline script, no eval: the CSP allows neither.
 */
export const PASSKEYS_JS = `'use strict';
(function () {
  var lib = window.SimpleWebAuthnBrowser;
  if (!lib || !lib.browserSupportsWebAuthn()) return;

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        if (!response.ok) throw new Error((json && json.message) || ('The server answered ' + response.status));
        return json;
      });
    });
  }

  function showError(root, err) {
    var box = root.querySelector('[data-passkey-error]');
    var message = err && err.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out.' : (err && err.message) || 'Something went wrong.';
    if (box) { box.textContent = message; box.hidden = false; }
  }

  /** A local path only (the server made it safe already; this is belt and braces). */
  function safeNext(next) {
    return typeof next === 'string' && next.charAt(0) === '/' && next.charAt(1) !== '/' && next.charAt(1) !== '\\\\' ? next : '/';
  }

  // Account page: register a passkey.
  var add = document.querySelector('form[data-passkey-add]');
  if (add) {
    add.hidden = false;
    add.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = add.querySelector('button');
      var name = add.querySelector('input[name=name]').value;
      button.disabled = true;
      post('/auth/mfa/webauthn/options').then(function (options) {
        return lib.startRegistration({ optionsJSON: options });
      }).then(function (response) {
        return post('/auth/mfa/webauthn', { name: name, response: response });
      }).then(function () {
        window.location.assign('/auth/account?done=passkey_added');
      }).catch(function (err) {
        button.disabled = false;
        showError(add, err);
      });
    });
  }

  // Sign-in page: a passkey alone.
  var signIn = document.querySelector('[data-passkey-login]');
  if (signIn) {
    signIn.hidden = false;
    var signInButton = signIn.querySelector('button');
    signInButton.addEventListener('click', function () {
      signInButton.disabled = true;
      post('/auth/login/passkey/options').then(function (options) {
        return lib.startAuthentication({ optionsJSON: options });
      }).then(function (response) {
        return post('/auth/login/passkey', { response: response });
      }).then(function () {
        var next = document.querySelector('input[name=next]');
        window.location.assign(safeNext(next ? next.value : '/'));
      }).catch(function (err) {
        signInButton.disabled = false;
        showError(signIn, err);
      });
    });
  }

  // Second-factor page (a two-step login or a step-up): answer with a passkey, then post the form.
  var factor = document.querySelector('form[data-passkey-factor]');
  if (factor) {
    factor.hidden = false;
    factor.addEventListener('submit', function (event) {
      if (factor.querySelector('input[name=webauthn]').value) return;
      event.preventDefault();
      var button = factor.querySelector('button');
      var token = factor.querySelector('input[name=mfa_token]');
      button.disabled = true;
      post(factor.getAttribute('data-passkey-factor'), token ? { mfa_token: token.value } : {}).then(function (options) {
        return lib.startAuthentication({ optionsJSON: options });
      }).then(function (response) {
        factor.querySelector('input[name=webauthn]').value = JSON.stringify(response);
        factor.submit();
      }).catch(function (err) {
        button.disabled = false;
        showError(factor, err);
      });
    });
  }
})();
`

export async function passkeyAssets(app: FastifyInstance): Promise<void> {
  const bundle = readBrowserBundle()
  const javascript = { 200: { description: 'JavaScript', content: { 'text/javascript': { schema: { type: 'string' } } } } }
  app.get('/auth/assets/webauthn.js', { config: { access: 'anonymous' }, schema: { summary: 'The @simplewebauthn/browser library', response: javascript } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(bundle),
  )
  app.get('/auth/assets/passkeys.js', { config: { access: 'anonymous' }, schema: { summary: 'The passkey script of the account and sign-in pages', response: javascript } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(PASSKEYS_JS),
  )
}
