// {{name}}: a Tributary connector, in JavaScript.
//
// It watches one JSON HTTP service: `GET /v1/stats` answers how many
// records arrived, how many failed and when the data last changed, and
// `collect` turns that into one observation of the asset `records`. Change
// it to talk to your own system; `tributary plugin test` checks it against
// the recorded exchanges in tests/.

import { Client, ConnectorError, Observation, assetDescriptor, connector, report } from '@tributary/plugin-sdk';

const ASSET = 'records';

function client(cfg) {
  return new Client({ baseUrl: cfg.base_url, bearer: cfg.token, timeoutMs: 20_000 });
}

export const plugin = connector({
  name: '{{name}}',
  version: '0.1.0',
  description: 'Watches the records of one JSON HTTP service',
  // The SDK checks every config against this before calling us.
  configSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: '{{name}} connector config',
    type: 'object',
    additionalProperties: false,
    required: ['base_url', 'token'],
    properties: {
      base_url: { type: 'string', pattern: '^https?://', description: 'Base URL of the service; grant it in allowed_hosts' },
      token: { type: 'string', minLength: 1, 'x-secret': true, description: 'API token, sent as a bearer token' },
    },
  },

  async testConnection(cfg) {
    const health = await client(cfg).getJson('/v1/health');
    if (!health.ok) throw ConnectorError.transient('the service reports it is not healthy');
  },

  async discover(cfg) {
    return [assetDescriptor(ASSET, 'dataset', 'Records the service received')];
  },

  async collect(cfg, ctx) {
    const stats = await client(cfg).getJson('/v1/stats');
    if (typeof stats.received !== 'number') {
      throw ConnectorError.system('the stats answer lacks a numeric "received"');
    }
    const observation = new Observation(ASSET, 'dataset')
      .received(stats.received)
      .errored(stats.failed ?? 0);
    if (stats.updated_at) observation.freshness(stats.updated_at);
    return report(observation);
  },
});
