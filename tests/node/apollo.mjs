#!/usr/bin/env node
// Apollo Client 4 against a running Stockroom, set up as its docs show a frontend doing it:
// the persisted-queries link with useGETForHashedQueries, the normalised InMemoryCache, and a
// GraphQLWsLink over graphql-ws for subscriptions. Prints a JSON report; exit 1 on failure.
//
//   node apollo.mjs --url http://127.0.0.1:8000/graphql [--email clerk@example.com --password clerk]
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";

import { ApolloClient, ApolloLink, gql, HttpLink, InMemoryCache } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8000/graphql" },
    email: { type: "string", default: "clerk@example.com" },
    password: { type: "string", default: "clerk" },
    timeout: { type: "string", default: "30000" },
  },
});
const timeout = Number(args.timeout);
const wsUrl = args.url.replace(/^http/, "ws");
const report = { requests: [], persisted: null, cache: null, subscription: null, ok: false };

// Every HTTP request the links make, as the server answered it.
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  const url = new URL(typeof input === "string" ? input : input.url);
  report.requests.push({
    method: init?.method ?? "GET",
    operationName: url.searchParams.get("operationName") ?? JSON.parse(init?.body ?? "{}").operationName ?? null,
    hasQuery: url.searchParams.has("query") || String(init?.body ?? "").includes('"query"'),
    status: response.status,
    contentType: response.headers.get("content-type"),
    etag: response.headers.get("etag"),
  });
  return response;
}

const ITEMS = gql`
  query Items {
    items(first: 3) {
      edges { node { id sku name stockLevels { id onHand available warehouse { id code } } } }
    }
  }
`;
const ADJUST = gql`
  mutation Adjust($input: AdjustStockInput!) {
    adjustStock(input: $input) { stockLevel { id onHand available } errors { code message } }
  }
`;
const STOCK_CHANGED = gql`
  subscription StockChanged { stockChanged { movement { delta } stockLevel { id onHand } } }
`;

function withTimeout(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: timed out`)), timeout)),
  ]);
}

let wsClient;
try {
  const login = await fetch(args.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
      variables: { e: args.email, p: args.password },
    }),
  });
  const token = (await login.json()).data.login.accessToken;
  let connectionInit = null;
  wsClient = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: () => (connectionInit = { Authorization: `Bearer ${token}` }),
  });
  const auth = new SetContextLink((prev) => ({
    headers: { ...prev.headers, Authorization: `Bearer ${token}` },
  }));
  const http = ApolloLink.from([
    auth,
    new PersistedQueryLink({
      sha256: (text) => createHash("sha256").update(text).digest("hex"),
      useGETForHashedQueries: true,
    }),
    new HttpLink({ uri: args.url, fetch: recordingFetch }),
  ]);
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === "OperationDefinition" && definition.operation === "subscription";
    },
    new GraphQLWsLink(wsClient),
    http,
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });

  // 1. Persisted queries: hash over GET, told to send the document, then the hash alone.
  const first = await client.query({ query: ITEMS, fetchPolicy: "network-only" });
  const second = await client.query({ query: ITEMS, fetchPolicy: "network-only" });
  report.persisted = {
    requests: report.requests.map((r) => `${r.method} ${r.hasQuery ? "query" : "hash"} ${r.status}`),
    sameData: JSON.stringify(first.data) === JSON.stringify(second.data),
    edges: first.data.items.edges.length,
  };

  // 2. The normalised cache: a mutation's payload updates the level the list shows.
  const item = first.data.items.edges[0].node;
  const level = item.stockLevels[0];
  const before = report.requests.length;
  const adjusted = await client.mutate({
    mutation: ADJUST,
    variables: { input: { itemId: item.id, warehouseId: level.warehouse.id, delta: 5, kind: "RECEIPT" } },
  });
  const cached = await client.query({ query: ITEMS, fetchPolicy: "cache-only" });
  const cachedLevel = cached.data.items.edges[0].node.stockLevels[0];
  report.cache = {
    onHandBefore: level.onHand,
    onHandReturned: adjusted.data.adjustStock.stockLevel.onHand,
    onHandInCache: cachedLevel.onHand,
    mutationRequests: report.requests.length - before,
    payloadErrors: adjusted.data.adjustStock.errors,
  };

  // 3. A subscription over graphql-ws: moves are made until the first event arrives (the
  // protocol has no "subscribed" acknowledgement to wait for instead).
  let mover;
  let event;
  try {
    event = await withTimeout(new Promise((resolve, reject) => {
      const subscription = client.subscribe({ query: STOCK_CHANGED }).subscribe({
        next: (value) => { subscription.unsubscribe(); resolve(value); },
        error: reject,
      });
      mover = setInterval(() => {
        client.mutate({
          mutation: ADJUST,
          variables: { input: { itemId: item.id, warehouseId: level.warehouse.id, delta: 1, kind: "RECEIPT" } },
        }).catch(reject);
      }, 500);
    }), "subscription");
  } finally {
    clearInterval(mover);
  }
  report.subscription = {
    data: event.data,
    errors: event.errors ?? null,
    connectionInitHasAuthorization: typeof connectionInit?.Authorization === "string",
  };
  report.ok = true;
} catch (err) {
  report.error = String(err && err.stack ? err.stack : err);
} finally {
  if (wsClient) await wsClient.dispose();
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
process.exit(report.ok ? 0 : 1);
