// GraphiQL plugin panel "Sign in": signs in with email and password through the `login`
// mutation, keeps the tokens for this tab (sessionStorage), refreshes the access token before
// it expires (`refreshToken` mutation) and shows who is signed in with which role.
// graphiql.js reads `StockroomSignIn.authorization()` for every query's Authorization header
// and for subscriptions' connection_init. Loaded by graphiql.js; globals: React.
(function () {
  "use strict";

  var STORAGE_KEY = "stockroom.graphiql.session";
  // Refresh once three quarters of the token's life are gone, and never later than
  // MARGIN_MS before it expires.
  var REFRESH_SHARE = 0.75;
  var MARGIN_MS = 5000;
  var RETRY_MS = 5000;
  var httpUrl = window.location.origin + "/graphql";

  var TOKEN_FIELDS = "accessToken refreshToken expiresIn user { email role } errors { code message }";
  var LOGIN =
    "mutation StockroomSignIn($email: String!, $password: String!) { login(email: $email, password: $password) { " +
    TOKEN_FIELDS + " } }";
  var REFRESH =
    "mutation StockroomRefresh($refreshToken: String!) { refreshToken(refreshToken: $refreshToken) { " +
    TOKEN_FIELDS + " } }";

  // { accessToken, refreshToken, issuedAt, expiresAt (ms), email, role, id, refreshes }
  var session = null;
  var error = null;
  var busy = false;
  var timer = null;
  var inflight = null;
  var listeners = [];
  var sessions = 0;

  function emit() {
    listeners.slice().forEach(function (listener) {
      listener();
    });
  }

  function save() {
    try {
      if (session) window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
      else window.sessionStorage.removeItem(STORAGE_KEY);
    } catch (ignored) {
      // storage may be unavailable (private mode): the session then lasts as long as the page
    }
  }

  function load() {
    try {
      var stored = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "null");
      if (stored && stored.accessToken && stored.refreshToken) return stored;
    } catch (ignored) {
      // a damaged entry is as good as none
    }
    return null;
  }

  async function call(query, variables) {
    var response = await fetch(httpUrl, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json;q=0.9",
      },
      body: JSON.stringify({ query: query, variables: variables }),
    });
    var body = await response.json();
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    return body.data;
  }

  function schedule() {
    clearTimeout(timer);
    if (!session) return;
    var lifetime = session.expiresAt - session.issuedAt;
    var at = Math.min(session.issuedAt + lifetime * REFRESH_SHARE, session.expiresAt - MARGIN_MS);
    timer = setTimeout(function () {
      refresh().catch(function () {
        // refresh() has recorded the reason; a network failure is retried by schedule()
      });
    }, Math.max(0, at - Date.now()));
  }

  function adopt(payload, id, refreshes) {
    if (!payload || payload.errors.length || !payload.accessToken) {
      throw new Error(payload && payload.errors.length ? payload.errors[0].message : "No token issued");
    }
    var now = Date.now();
    session = {
      accessToken: payload.accessToken,
      refreshToken: payload.refreshToken,
      issuedAt: now,
      expiresAt: now + payload.expiresIn * 1000,
      email: payload.user.email,
      role: payload.user.role,
      id: id,
      refreshes: refreshes,
    };
    error = null;
    save();
    schedule();
    emit();
  }

  async function signIn(email, password) {
    busy = true;
    error = null;
    emit();
    try {
      var data = await call(LOGIN, { email: email, password: password });
      sessions += 1;
      adopt(data.login, Date.now() + ":" + sessions, 0);
    } catch (failure) {
      error = String(failure.message || failure);
      emit();
    } finally {
      busy = false;
      emit();
    }
  }

  function refresh() {
    if (!session) return Promise.resolve(null);
    if (inflight) return inflight;
    var current = session;
    inflight = call(REFRESH, { refreshToken: current.refreshToken })
      .then(
        function (data) {
          adopt(data.refreshToken, current.id, current.refreshes + 1);
          return session;
        },
        function (failure) {
          if (failure instanceof TypeError) {
            // the network, not the token: try again shortly while the token still lives
            clearTimeout(timer);
            timer = setTimeout(function () {
              refresh().catch(function () {});
            }, RETRY_MS);
            throw failure;
          }
          signOut("Signed out: " + String(failure.message || failure));
          throw failure;
        },
      )
      .finally(function () {
        inflight = null;
      });
    return inflight;
  }

  function signOut(reason) {
    clearTimeout(timer);
    session = null;
    error = reason || null;
    save();
    emit();
  }

  // The Authorization value for the next request, refreshed first when the token is about to
  // expire (e.g. after the laptop slept through the scheduled refresh); null when signed out.
  async function authorization() {
    if (session && session.expiresAt - Date.now() < MARGIN_MS) {
      try {
        await refresh();
      } catch (ignored) {
        // signed out, or the network is down: the request goes without a fresh token
      }
    }
    return session ? "Bearer " + session.accessToken : null;
  }

  function current() {
    return session;
  }

  function subscribe(listener) {
    listeners.push(listener);
    return function () {
      listeners = listeners.filter(function (other) {
        return other !== listener;
      });
    };
  }

  // --- the panel -------------------------------------------------------------------------

  var h = React.createElement;

  function useStore() {
    var pair = React.useState(0);
    var bump = pair[1];
    React.useEffect(function () {
      var tick = setInterval(function () {
        bump(function (n) {
          return n + 1;
        });
      }, 1000);
      var unsubscribe = subscribe(function () {
        bump(function (n) {
          return n + 1;
        });
      });
      return function () {
        clearInterval(tick);
        unsubscribe();
      };
    }, []);
  }

  function seconds(ms) {
    return Math.max(0, Math.round(ms / 1000)) + " s";
  }

  function SignedIn() {
    var now = Date.now();
    var lifetime = session.expiresAt - session.issuedAt;
    var refreshAt = Math.min(session.issuedAt + lifetime * REFRESH_SHARE, session.expiresAt - MARGIN_MS);
    return h(
      "div",
      { className: "stockroom-signin-status", "data-state": "signed-in" },
      h("p", null, "Signed in as ", h("strong", { className: "stockroom-signin-email" }, session.email)),
      h("p", null, "Role: ", h("strong", { className: "stockroom-signin-role" }, session.role)),
      h(
        "p",
        { className: "stockroom-signin-expiry" },
        "Token expires in " + seconds(session.expiresAt - now) + "; refreshed in " + seconds(refreshAt - now) + "." +
          (session.refreshes ? " Refreshed " + session.refreshes + (session.refreshes === 1 ? " time" : " times") + " so far." : ""),
      ),
      h(
        "p",
        { className: "stockroom-signin-note" },
        "Queries, mutations and subscriptions carry this token; an Authorization header in the Headers tab is not sent while you are signed in here.",
      ),
      h(
        "button",
        {
          type: "button",
          className: "graphiql-button stockroom-signin-signout",
          onClick: function () {
            signOut(null);
          },
        },
        "Sign out",
      ),
    );
  }

  function SignInForm() {
    var email = React.useState("admin@example.com");
    var password = React.useState("");
    return h(
      "form",
      {
        className: "stockroom-signin-form",
        "data-state": "signed-out",
        onSubmit: function (event) {
          event.preventDefault();
          signIn(email[0], password[0]);
        },
      },
      h(
        "label",
        null,
        "Email",
        h("input", {
          type: "email",
          name: "email",
          autoComplete: "username",
          required: true,
          value: email[0],
          onChange: function (event) {
            email[1](event.target.value);
          },
        }),
      ),
      h(
        "label",
        null,
        "Password",
        h("input", {
          type: "password",
          name: "password",
          autoComplete: "current-password",
          required: true,
          value: password[0],
          onChange: function (event) {
            password[1](event.target.value);
          },
        }),
      ),
      h("button", { type: "submit", className: "graphiql-button", disabled: busy }, busy ? "Signing in…" : "Sign in"),
      h("p", { className: "stockroom-signin-hint" }, "Demo accounts: admin@example.com / admin, clerk@example.com / clerk, viewer@example.com / viewer."),
    );
  }

  function Panel() {
    useStore();
    return h(
      "div",
      { className: "stockroom-signin" },
      h("div", { className: "graphiql-doc-explorer-title" }, "Sign in"),
      error ? h("p", { className: "stockroom-signin-error", role: "alert" }, error) : null,
      session ? h(SignedIn) : h(SignInForm),
    );
  }

  function Icon() {
    // A key: an outline circle and a shaft, drawn with currentColor like GraphiQL's own icons.
    return h(
      "svg",
      { viewBox: "0 0 24 24", width: "1em", height: "1em", fill: "none", stroke: "currentColor", strokeWidth: 1.5 },
      h("circle", { cx: 8, cy: 12, r: 4 }),
      h("path", { d: "M12 12h9M18 12v3M21 12v2", strokeLinecap: "round" }),
    );
  }

  session = load();
  if (session) {
    sessions += 1;
    if (session.expiresAt - Date.now() < MARGIN_MS) refresh().catch(function () {});
    else schedule();
  }

  window.StockroomSignIn = {
    plugin: { title: "Sign in", icon: Icon, content: Panel },
    authorization: authorization,
    current: current,
    subscribe: subscribe,
    signOut: signOut,
  };
})();
