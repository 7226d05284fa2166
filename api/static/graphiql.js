// Boots GraphiQL for Stockroom from the vendored UMD bundles (see graphiql.html).
// Globals: React, ReactDOM, graphqlWs, GraphiQL, GraphiQLPluginExplorer.
(function () {
  "use strict";

  var TOKEN_PLACEHOLDER = "<paste the accessToken from the login mutation>";
  var DEFAULT_HEADERS = JSON.stringify({ Authorization: "Bearer " + TOKEN_PLACEHOLDER }, null, 2);

  var DEFAULT_QUERY = [
    "# Welcome to Stockroom's GraphiQL.",
    "#",
    "# 1. Run the Login mutation below (demo",
    "#    account: admin@example.com / admin).",
    "# 2. Paste its accessToken into the Headers",
    "#    tab below:",
    '#    {"Authorization": "Bearer <accessToken>"}',
    "#    Headers are kept in this browser and sent",
    "#    with queries, mutations and (as",
    "#    connection_init params) subscriptions.",
    "# 3. Run the Me query, or build one with the",
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
  // carries the headers editor's current Authorization. When the token changes while a socket is
  // open, the client is replaced so the next subscription authenticates with the new one.
  var currentAuthorization = null;
  var wsClient = null;
  var wsClientAuthorization = null;
  var innerFetcher = null;

  function isClientRejection(event) {
    // 4400-4499: the server refused this connection (e.g. 4403 bad or missing token); retrying
    // with the same params cannot help, so fail at once and let GraphiQL show the reason.
    return event && typeof event.code === "number" && event.code >= 4400 && event.code < 4500;
  }

  // A subscription that fails (e.g. the socket refused for a bad token) ends with its error
  // shown as a GraphQL error in the result pane: GraphiQL's own path would also leave an
  // unhandled promise rejection behind, and only say "Socket closed with event 4403".
  function explain(error) {
    if (error && typeof error.code === "number") {
      var message = "The WebSocket closed (code " + error.code + (error.reason ? " " + error.reason : "") + ").";
      if (isClientRejection(error)) {
        message +=
          ' The server refused it: put a valid token in the Headers tab, {"Authorization": "Bearer <accessToken>"}, and run again.';
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
    if (wsClient && wsClientAuthorization !== currentAuthorization) {
      wsClient.dispose();
      wsClient = null;
    }
    if (!wsClient) {
      wsClientAuthorization = currentAuthorization;
      wsClient = graphqlWs.createClient({
        url: wsUrl,
        lazy: true,
        retryAttempts: 3,
        shouldRetry: function (event) {
          return !isClientRejection(event);
        },
        connectionParams: function () {
          return currentAuthorization ? { Authorization: currentAuthorization } : {};
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

  function fetcher(graphQLParams, opts) {
    var headers = opts && opts.headers;
    currentAuthorization = authorizationOf(headers);
    var options = Object.assign({}, opts, { headers: withoutPlaceholder(headers) });
    return currentFetcher()(graphQLParams, options);
  }

  var explorer = GraphiQLPluginExplorer.explorerPlugin({ showAttribution: false });

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: "headers",
      inputValueDeprecation: true,
    })
  );
})();
