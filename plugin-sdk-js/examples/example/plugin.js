// # The example connector, in JavaScript
//
// The same connector as the Rust one in plugins/example/src/lib.rs (read
// its header for the service's API), and it passes the same test suite
// (plugin-tests/src/lib.rs, run by plugin-tests/tests/example_js.rs).
// Build it with:
//
//   plugin-sdk-js/build.sh plugin-sdk-js/examples/example/plugin.js -o example.wasm
//
// It watches a JSON HTTP service that reports, per tenant, how many
// documents it expected, received and failed to process; `collect` turns
// the service's statistics into one observation of the asset `documents`.
//
// What the SDK does for us: checks the config against `configSchema` (a
// missing or mistyped field is a `config` error naming it), classifies HTTP
// failures (401 -> auth, 5xx/429/timeouts -> transient, other 4xx ->
// config), turns anything thrown into a classified error, and streams ids
// to the host in batches.

import {
  Client,
  ConnectorError,
  IdStream,
  Observation,
  actionOutcome,
  assetDescriptor,
  assetError,
  connector,
  encode,
  log,
  report,
} from '@tributary/plugin-sdk';

/** The asset this connector reports on: a tenant's documents. */
const ASSET = 'documents';

/** How many ids to ask for per page when `collect_ids` is on. */
const ID_PAGE_SIZE = 1000;

/** One HTTP client per call, with the base URL and our token on every request. */
function client(cfg) {
  return new Client({ baseUrl: cfg.base_url, bearer: cfg.token, timeoutMs: 20_000 });
}

/** The tenant's part of every URL, percent-encoded. */
function tenantPath(cfg) {
  return `/v1/tenants/${encode(cfg.tenant)}`;
}

/** Page through the tenant's document ids and hand them to the host. */
async function streamIds(api, cfg) {
  const ids = new IdStream(ASSET);
  let cursor;
  for (;;) {
    let page;
    try {
      page = await api.getJson(`${tenantPath(cfg)}/documents/ids`, {
        query: { cursor, limit: ID_PAGE_SIZE },
      });
    } catch (e) {
      throw e instanceof ConnectorError ? e.context('listing document ids') : e;
    }
    ids.extend(page.ids);
    const next = page.next_cursor;
    // A service that hands back the cursor we sent would make us loop
    // until the deadline: fail clearly instead.
    if (next != null && next === cursor) {
      throw ConnectorError.system(`the ids endpoint returned the same cursor ${JSON.stringify(next)} twice`);
    }
    if (!next) break;
    cursor = next;
  }
  return ids.finish();
}

export const plugin = connector({
  name: 'example',
  version: '0.1.0',
  description: "Example connector: watches a tenant's document intake in a JSON HTTP service",
  // What the daemon validates a check's config against, and what the SDK
  // checks before calling us.
  configSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'example connector config',
    type: 'object',
    additionalProperties: false,
    required: ['base_url', 'tenant', 'token'],
    properties: {
      base_url: {
        type: 'string',
        pattern: '^https?://',
        description: 'Base URL of the service, e.g. https://intake.example.com; grant it in allowed_hosts',
      },
      tenant: { type: 'string', minLength: 1, description: 'The tenant whose documents to watch' },
      token: { type: 'string', minLength: 1, 'x-secret': true, description: 'API token, sent as a bearer token' },
      collect_ids: {
        type: 'boolean',
        default: false,
        description: 'Also list received document ids (one request per 1000 documents)',
      },
    },
  },
  // We implement `resync`; say so, or the daemon never calls it.
  capabilities: { resync: true },

  /** The health endpoint needs a valid token: a 200 proves reach and auth. */
  async testConnection(cfg) {
    const health = await client(cfg).getJson('/v1/health');
    if (!health.ok) throw ConnectorError.transient('the service reports it is not healthy');
  },

  /** What a check with this config can watch: always one asset. */
  async discover(cfg) {
    return [assetDescriptor(ASSET, 'documents', `Documents received for tenant ${cfg.tenant}`)];
  },

  /** One run: read the tenant's statistics and report them. */
  async collect(cfg, ctx) {
    const api = client(cfg);
    // Without the automatic status check, so a 404 can say which tenant is
    // unknown; every other status gets the SDK's rules.
    const response = await api.request('GET', `${tenantPath(cfg)}/stats`);
    if (response.status === 404) {
      throw ConnectorError.config(`tenant ${JSON.stringify(cfg.tenant)} not found at ${cfg.base_url}`);
    }
    const stats = response.errorForStatus().json();
    const docs = stats.documents;

    const observation = new Observation(ASSET, 'documents')
      .received(docs.received)
      .errored(docs.failed ?? 0)
      .freshness(stats.updated_at)
      .metadata('tenant', cfg.tenant);
    if (docs.expected != null) observation.expected(docs.expected);
    if (stats.last_received) observation.lastReceived(stats.last_received.id, stats.last_received.at);
    // The SDK keeps at most 100 errors as a sample but counts every one.
    observation.errors(
      (stats.errors ?? []).map((e) =>
        assetError(e.kind, e.message, { documentId: e.document_id, logLink: e.log_url, at: e.at }),
      ),
    );

    if (cfg.collect_ids) {
      const sent = await streamIds(api, cfg);
      log.info('streamed document ids', { tenant: cfg.tenant, ids: sent });
    }
    log.info('collected document stats', {
      tenant: cfg.tenant,
      received: docs.received,
      failed: docs.failed ?? 0,
      attempt: ctx.attempt,
    });
    return report(observation);
  },

  /** Ask the service to send documents again (all when `ids` is empty). */
  async resync(cfg, asset, ids) {
    if (asset !== ASSET) {
      throw ConnectorError.config(`unknown asset ${JSON.stringify(asset)}: this connector only has "${ASSET}"`);
    }
    const { accepted } = await client(cfg).postJson(`${tenantPath(cfg)}/documents/resync`, { ids });
    return actionOutcome({ affected: accepted, message: `the service accepted ${accepted} document(s) for resync` });
  },
});
