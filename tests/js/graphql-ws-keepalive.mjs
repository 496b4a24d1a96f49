// The reference graphql-ws client on its default settings (no keepAlive of
// its own, lazy, 5 retries): only the URL, the `ws` WebSocket and the token.
// It subscribes once and prints a JSON line for everything it sees, with a
// millisecond timestamp: connecting, connected, ping (from the server),
// closed (code and reason), next (the payload), error, complete. It exits
// when the subscription ends (an error, or the client giving up after its
// retries); otherwise it runs until it is killed.
//
// node graphql-ws-keepalive.mjs ws://HOST/graphql TOKEN QUERY [VARIABLES_JSON]

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, query, variables = '{}'] = process.argv.slice(2);

const report = (event, fields = {}) =>
  console.log(JSON.stringify({ event, at: Date.now(), ...fields }));

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  on: {
    connecting: (isRetry) => report('connecting', { isRetry }),
    connected: () => report('connected'),
    // `received` is false for the pings the client sends itself (none on
    // default settings).
    ping: (received) => received && report('ping'),
    closed: (event) => report('closed', { code: event.code, reason: event.reason }),
  },
});

client.subscribe(
  { query, variables: JSON.parse(variables) },
  {
    next: (payload) => report('next', { payload }),
    error: (error) => {
      // A close event when the client gives up, else the GraphQL errors.
      report('error', Array.isArray(error)
        ? { errors: error }
        : { code: error.code, reason: error.reason, message: String(error.message ?? '') });
      client.dispose();
    },
    complete: () => {
      report('complete');
      client.dispose();
    },
  },
);
