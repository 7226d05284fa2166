#!/usr/bin/env node
// The GraphQL over HTTP spec's audit (graphql-http's auditServer, by the spec's working group)
// against a running server; prints every result as JSON and exits 1 on any error or warning.
//
//   node audit.mjs --url http://127.0.0.1:8000/graphql
import { parseArgs } from "node:util";

import { auditServer } from "graphql-http";

const { values: args } = parseArgs({
  options: { url: { type: "string", default: "http://127.0.0.1:8000/graphql" } },
});

const results = await auditServer({ url: args.url });
const report = [];
for (const result of results) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") {
    entry.reason = result.reason;
    entry.httpStatus = result.response.status;
    entry.contentType = result.response.headers.get("content-type");
    entry.body = await result.response.text().catch((err) => `(unreadable: ${err})`);
  }
  report.push(entry);
}
const count = (status) => report.filter((r) => r.status === status).length;
const summary = { ok: count("ok"), notice: count("notice"), warn: count("warn"), error: count("error") };
process.stdout.write(JSON.stringify({ summary, results: report }, null, 2) + "\n");
process.exit(summary.warn === 0 && summary.error === 0 ? 0 : 1);
