// What the client scripts share: a fetch that records every HTTP request a
// client makes (so a test can tell what went over the wire: method, whether
// the query text or only its hash was sent, the status and CORS header that
// came back), and one way to report a JSON line to the Rust test.

/** Prints one report: a JSON object on its own line. */
export function report(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

/** A fetch for the clients, and `take()`, which hands over and forgets the
 * requests recorded so far. */
export function recorder() {
  let sent = [];
  const fetchAndRecord = async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.url);
    const body = typeof init.body === "string" ? JSON.parse(init.body) : {};
    const extensions = url.searchParams.has("extensions")
      ? JSON.parse(url.searchParams.get("extensions"))
      : body.extensions;
    const response = await fetch(input, init);
    sent.push({
      method: (init.method ?? "GET").toUpperCase(),
      sentQuery: url.searchParams.has("query") || typeof body.query === "string",
      sentHash: typeof extensions?.persistedQuery?.sha256Hash === "string",
      status: response.status,
      contentType: response.headers.get("content-type"),
      allowOrigin: response.headers.get("access-control-allow-origin"),
    });
    return response;
  };
  const take = () => {
    const out = sent;
    sent = [];
    return out;
  };
  return { fetch: fetchAndRecord, take };
}

/** The scripts' arguments: a JSON object of the daemon's URL and tokens,
 * then the scenarios to run, in order. */
export function args() {
  const [settings, ...scenarios] = process.argv.slice(2);
  return { ...JSON.parse(settings), scenarios };
}

/** `count` aliased fields: one more than `api.limits.max_aliases` (50). */
export function aliases(count) {
  const fields = Array.from({ length: count }, (_, i) => `a${i}: lastEventSeq`);
  return `query TooManyAliases { ${fields.join(" ")} }`;
}
