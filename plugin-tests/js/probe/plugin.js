// TEST ONLY: exercises the JavaScript SDK's HTTP client. `collect` GETs
// `url` as JSON with a `timeout_ms` timeout and reports the body's `n` as
// `received`, so the tests see how each answer is classified. With `ids`
// set it streams that many ids instead (no HTTP).

import { Client, IdStream, Observation, connector, report } from '@tributary/plugin-sdk';

export const plugin = connector({
  name: 'probe-js',
  version: '0.1.0',
  description: "TEST ONLY: the JS SDK's HTTP client",
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      url: { type: 'string' },
      timeout_ms: { type: 'integer', default: 10000 },
      ids: { type: 'integer' },
    },
  },
  async collect(cfg) {
    if (cfg.ids !== undefined) {
      const ids = new IdStream('probe', 100);
      for (let i = 0; i < cfg.ids; i++) ids.push(`id-${i}`);
      return report(new Observation('probe', 'table').received(ids.finish()));
    }
    const body = await new Client({ timeoutMs: cfg.timeout_ms }).getJson(cfg.url);
    return report(new Observation('probe', 'table').received(body.n));
  },
});
