// Boots GraphiQL for Stockroom from the vendored UMD bundles (see graphiql.html), after loading
// the "Sign in" panel (graphiql-signin.js).
// Globals: React, ReactDOM, graphqlWs, GraphiQL, GraphiQLPluginExplorer, StockroomSignIn.
(function () {
  "use strict";

  var TOKEN_PLACEHOLDER = "<paste the accessToken from the login mutation>";
  var DEFAULT_HEADERS = JSON.stringify({ Authorization: "Bearer " + TOKEN_PLACEHOLDER }, null, 2);

  var DEFAULT_QUERY = [
    "# Welcome to Stockroom's GraphiQL.",
    "#",
    "# 1. Sign in with the key icon (left): the",
    "#    panel keeps and refreshes your token and",
    "#    sends it with queries, mutations and",
    "#    subscriptions. Or run the Login mutation",
    "#    below (demo: admin@example.com / admin)",
    "#    and paste its accessToken into the",
    "#    Headers tab:",
    '#    {"Authorization": "Bearer <accessToken>"}',
    "# 2. Run the Me query, or build one with the",
    "#    Explorer (folder icon, left).",
    "#",
    "# Ctrl-Enter runs the operation under the",
    "# cursor; Ctrl-Space autocompletes.",
    "",
    "mutation Login {",
    '  login(email: "admin@example.com", password: "admin") {',
    "    accessToken",
    "    errors { code message }",
    "  }",
    "}",
    "",
    "query Me {",
    "  me { email role }",
    "}",
    "",
  ].join("\n");

  var httpUrl = window.location.origin + "/graphql";
  var wsUrl =
    (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + "/graphql";

  // The Authorization value from the headers editor, or null while it is absent or still the
  // placeholder (a placeholder is never sent: it would only make the server log a bad token).
  function authorizationOf(headers) {
    if (!headers || typeof headers !== "object") return null;
    for (var key in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, key) && key.toLowerCase() === "authorization") {
        var value = headers[key];
        if (typeof value !== "string" || value.indexOf(TOKEN_PLACEHOLDER) !== -1) return null;
        return value.trim() || null;
      }
    }
    return null;
  }

  function withoutPlaceholder(headers) {
    var out = {};
    if (!headers || typeof headers !== "object") return out;
    for (var key in headers) {
      if (!Object.prototype.hasOwnProperty.call(headers, key)) continue;
      if (key.toLowerCase() === "authorization" && authorizationOf(headers) === null) continue;
      out[key] = headers[key];
    }
    return out;
  }

  // Subscriptions: graphql-transport-ws. The socket is lazy (opened on the first subscription,
  // closed after the last one), and connectionParams is read each time it opens, so it always
  // carries the current Authorization: the Sign in panel's token when signed in there, else
  // the headers editor's. When who is signed in changes, the client is replaced so the next
  // subscription authenticates as them. A refreshed token keeps the socket: the server closes
  // it (4403) when the token it opened with expires, and it reconnects with the new one.
  var currentAuthorization = null;
  var currentIdentity = null;
  var connectedWith = null;
  var wsClient = null;
  var wsClientIdentity = null;
  var innerFetcher = null;

  function isClientRejection(event) {
    // 4400-4499: the server refused this connection (e.g. 4403 bad or missing token); retrying
    // with the same params cannot help, so fail at once and let GraphiQL show the reason.
    return event && typeof event.code === "number" && event.code >= 4400 && event.code < 4500;
  }

  function tokenWasRefreshed(event) {
    var session = StockroomSignIn.current();
    return event.code === 4403 && session !== null && "Bearer " + session.accessToken !== connectedWith;
  }

  // A subscription that fails (e.g. the socket refused for a bad token) ends with its error
  // shown as a GraphQL error in the result pane: GraphiQL's own path would also leave an
  // unhandled promise rejection behind, and only say "Socket closed with event 4403".
  function explain(error) {
    if (error && typeof error.code === "number") {
      var message = "The WebSocket closed (code " + error.code + (error.reason ? " " + error.reason : "") + ").";
      if (isClientRejection(error)) {
        message +=
          ' The server refused it: sign in with the key icon, or put a valid token in the Headers tab, {"Authorization": "Bearer <accessToken>"}, and run again.';
      }
      return { errors: [{ message: message }] };
    }
    if (Array.isArray(error)) return { errors: error }; // GraphQL errors from the server
    return { errors: [{ message: String((error && error.message) || error) }] };
  }

  function reportingErrorsAsResults(client) {
    return {
      subscribe: function (payload, sink) {
        return client.subscribe(payload, {
          next: function (value) {
            sink.next(value);
          },
          complete: function () {
            sink.complete();
          },
          error: function (error) {
            sink.next(explain(error));
            sink.complete();
          },
        });
      },
      dispose: function () {
        return client.dispose();
      },
    };
  }

  function currentFetcher() {
    if (wsClient && wsClientIdentity !== currentIdentity) {
      wsClient.dispose();
      wsClient = null;
    }
    if (!wsClient) {
      wsClientIdentity = currentIdentity;
      wsClient = graphqlWs.createClient({
        url: wsUrl,
        lazy: true,
        retryAttempts: 3,
        shouldRetry: function (event) {
          return !isClientRejection(event) || tokenWasRefreshed(event);
        },
        connectionParams: async function () {
          var signedIn = await StockroomSignIn.authorization();
          connectedWith = signedIn || currentAuthorization;
          return connectedWith ? { Authorization: connectedWith } : {};
        },
      });
      innerFetcher = GraphiQL.createFetcher({
        url: httpUrl,
        subscriptionUrl: wsUrl,
        wsClient: reportingErrorsAsResults(wsClient),
      });
    }
    return innerFetcher;
  }

  async function fetcher(graphQLParams, opts) {
    var headers = withoutPlaceholder(opts && opts.headers);
    var signedIn = await StockroomSignIn.authorization();
    var session = StockroomSignIn.current();
    if (signedIn) {
      for (var key in headers) {
        if (key.toLowerCase() === "authorization") delete headers[key];
      }
      headers.Authorization = signedIn;
      currentAuthorization = signedIn;
      currentIdentity = "session:" + session.id;
    } else {
      currentAuthorization = authorizationOf(opts && opts.headers);
      currentIdentity = currentAuthorization && "header:" + currentAuthorization;
    }
    var options = Object.assign({}, opts, { headers: headers });
    return currentFetcher()(graphQLParams, options);
  }

  function render() {
    var explorer = GraphiQLPluginExplorer.explorerPlugin({ showAttribution: false });
    var root = ReactDOM.createRoot(document.getElementById("graphiql"));
    root.render(
      React.createElement(GraphiQL, {
        fetcher: fetcher,
        plugins: [StockroomSignIn.plugin, explorer],
        defaultQuery: DEFAULT_QUERY,
        defaultHeaders: DEFAULT_HEADERS,
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: true,
        defaultEditorToolsVisibility: "headers",
        inputValueDeprecation: true,
      })
    );
  }

  // The panel is its own file (one job each); a script element from 'self' passes the CSP.
  var signIn = document.createElement("script");
  signIn.src = "/static/graphiql-signin.js";
  signIn.onload = render;
  signIn.onerror = function () {
    document.getElementById("graphiql").textContent = "Could not load /static/graphiql-signin.js.";
  };
  document.head.appendChild(signIn);
})();
