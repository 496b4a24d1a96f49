// urql 6 on default settings against the daemon: Client with cacheExchange
// and fetchExchange, the Authorization header in fetchOptions (so short
// queries go as GET, urql's default). Each scenario named in the arguments
// reports what the client got and the HTTP requests it made.
//
//   node urql-client.mjs '{"url": "...", "token": "...", "adminToken": "...", "origin": "..."}' query mutation errors cors

import { Client, cacheExchange, fetchExchange, gql } from "@urql/core";
import { aliases, args, recorder, report } from "./record.mjs";

const { url, token, adminToken, origin, scenarios } = args();
const wire = recorder();

function client({ bearer = token, headers = {} } = {}) {
  return new Client({
    url: `${url}/graphql`,
    exchanges: [cacheExchange, fetchExchange],
    fetchOptions: { headers: { Authorization: `Bearer ${bearer}`, ...headers } },
    fetch: wire.fetch,
  });
}

/** What a result came to: data, or its errors' codes and messages. */
function outcome(result) {
  if (!result.error) return { data: result.data ?? null };
  const errors = result.error.graphQLErrors;
  return {
    error: errors.length ? "GraphQLErrors" : "NetworkError",
    codes: errors.map((e) => e.extensions?.code ?? null),
    messages: errors.map((e) => e.message),
    status: result.error.response?.status ?? null,
  };
}

const query = async (c, text) =>
  outcome(await c.query(gql(text), {}, { requestPolicy: "network-only" }).toPromise());

const run = {
  async query() {
    const got = await query(client(), "query Seq { lastEventSeq daemon { version } }");
    report("query", { ...got, requests: wire.take() });
  },
  async mutation() {
    const c = client({ bearer: adminToken });
    const result = await c
      .mutation(gql("mutation Reload { reloadConfig { added removed changed } }"), {})
      .toPromise();
    report("mutation", { ...outcome(result), requests: wire.take() });
  },
  async errors() {
    const unknown = await query(client({ bearer: "not-a-token" }), "query Seq { lastEventSeq }");
    report("unknown token", { ...unknown, requests: wire.take() });
    const limited = await query(client(), aliases(51));
    report("limit", { ...limited, requests: wire.take() });
  },
  async cors() {
    const got = await query(client({ headers: { Origin: origin } }), "query Seq { lastEventSeq }");
    report("cors", { ...got, requests: wire.take() });
  },
};

for (const name of scenarios) {
  if (!run[name]) throw new Error(`unknown scenario ${name}`);
  await run[name]();
}
