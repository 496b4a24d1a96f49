// Apollo Client 4 on default settings against the daemon: HttpLink with the
// Authorization header, and the persisted-queries link. Each scenario named
// in the arguments reports what the client got and the HTTP requests it made.
//
//   node apollo-client.mjs '{"url": "...", "token": "...", "adminToken": "...", "origin": "..."}' query mutation errors persisted persisted-get cors

import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { CombinedGraphQLErrors, ServerError } from "@apollo/client/errors";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { aliases, args, recorder, report } from "./record.mjs";

const { url, token, adminToken, origin, scenarios } = args();
const wire = recorder();

function client({ bearer = token, headers = {}, persisted } = {}) {
  let link = new HttpLink({
    uri: `${url}/graphql`,
    headers: { Authorization: `Bearer ${bearer}`, ...headers },
    fetch: wire.fetch,
  });
  if (persisted) {
    const sha256 = (text) => createHash("sha256").update(text).digest("hex");
    link = createPersistedQueryLink({ sha256, ...persisted }).concat(link);
  }
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

/** What a client call came to: data, or the error's kind and codes. */
async function outcome(call) {
  try {
    const result = await call();
    return { data: result.data ?? null };
  } catch (error) {
    if (CombinedGraphQLErrors.is(error)) {
      return {
        error: "CombinedGraphQLErrors",
        codes: error.errors.map((e) => e.extensions?.code ?? null),
        messages: error.errors.map((e) => e.message),
      };
    }
    if (ServerError.is(error)) {
      return { error: "ServerError", status: error.statusCode, body: error.bodyText };
    }
    return { error: error.name, message: error.message };
  }
}

const query = (c, text) => outcome(() => c.query({ query: gql(text), fetchPolicy: "network-only" }));

const run = {
  async query() {
    const got = await query(client(), "query Seq { lastEventSeq daemon { version } }");
    report("query", { ...got, requests: wire.take() });
  },
  async mutation() {
    const c = client({ bearer: adminToken });
    const got = await outcome(() =>
      c.mutate({ mutation: gql("mutation Reload { reloadConfig { added removed changed } }") }),
    );
    report("mutation", { ...got, requests: wire.take() });
  },
  async errors() {
    const unknown = await query(client({ bearer: "not-a-token" }), "query Seq { lastEventSeq }");
    report("unknown token", { ...unknown, requests: wire.take() });
    const limited = await query(client(), aliases(51));
    report("limit", { ...limited, requests: wire.take() });
  },
  // The link's default: hashes over POST; then hashes over GET.
  async persisted() {
    await persisted("persisted", {}, "query PersistedPost { lastEventSeq }");
  },
  async "persisted-get"() {
    await persisted(
      "persisted-get",
      { useGETForHashedQueries: true },
      "query PersistedGet { lastEventSeq daemon { version } }",
    );
  },
  async cors() {
    const got = await query(client({ headers: { Origin: origin } }), "query Seq { lastEventSeq }");
    report("cors", { ...got, requests: wire.take() });
  },
};

/** The same query twice through the persisted-queries link with `options`,
 * reported as `<name> first` and `<name> second`. */
async function persisted(name, options, text) {
  const c = client({ persisted: options });
  const first = await query(c, text);
  report(`${name} first`, { ...first, requests: wire.take() });
  const second = await query(c, text);
  report(`${name} second`, { ...second, requests: wire.take() });
}

for (const name of scenarios) {
  if (!run[name]) throw new Error(`unknown scenario ${name}`);
  await run[name]();
}
