#!/usr/bin/env node
// urql (@urql/core 6) with its persisted exchange preferring GET, against a running Stockroom:
// the first request sends the hash, is told to send the document, and the next sends the hash
// alone. Prints a JSON report; exit 1 on failure.
//
//   node urql.mjs --url http://127.0.0.1:8000/graphql [--email viewer@example.com --password viewer]
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";

import { Client, fetchExchange, gql } from "@urql/core";
import { persistedExchange } from "@urql/exchange-persisted";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8000/graphql" },
    email: { type: "string", default: "viewer@example.com" },
    password: { type: "string", default: "viewer" },
  },
});
const report = { requests: [], results: [], ok: false };

async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  const url = new URL(typeof input === "string" ? input : input.url);
  report.requests.push(
    `${init?.method ?? "GET"} ${url.searchParams.has("query") || String(init?.body ?? "").includes('"query"') ? "query" : "hash"} ${response.status}`,
  );
  return response;
}

const WAREHOUSES = gql`
  query Warehouses { warehouses(first: 5) { edges { node { id code name } } } }
`;

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
  const client = new Client({
    url: args.url,
    fetch: recordingFetch,
    fetchOptions: { headers: { Authorization: `Bearer ${token}` } },
    requestPolicy: "network-only",
    exchanges: [
      persistedExchange({
        preferGetForPersistedQueries: true,
        generateHash: async (query) => createHash("sha256").update(query).digest("hex"),
      }),
      fetchExchange,
    ],
  });
  for (let i = 0; i < 2; i++) {
    const result = await client.query(WAREHOUSES, {}).toPromise();
    report.results.push({
      codes: result.data?.warehouses.edges.map((e) => e.node.code) ?? null,
      error: result.error ? String(result.error) : null,
    });
  }
  report.ok = report.results.every((r) => r.codes && r.codes.length > 0 && !r.error);
} catch (err) {
  report.error = String(err && err.stack ? err.stack : err);
}
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
process.exit(report.ok ? 0 : 1);
