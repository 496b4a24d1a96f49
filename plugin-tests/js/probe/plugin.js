// TEST ONLY: exercises the JavaScript SDK's HTTP client. `collect` GETs
// `url` as JSON with a `timeout_ms` timeout and reports the body's `n` as
// `received`, so the tests see how each answer is classified.

import { Client, Observation, connector, report } from '@tributary/plugin-sdk';

export const plugin = connector({
  name: 'probe-js',
  version: '0.1.0',
  description: "TEST ONLY: the JS SDK's HTTP client",
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: { url: { type: 'string' }, timeout_ms: { type: 'integer', default: 10000 } },
  },
  async collect(cfg) {
    const body = await new Client({ timeoutMs: cfg.timeout_ms }).getJson(cfg.url);
    return report(new Observation('probe', 'table').received(body.n));
  },
});
