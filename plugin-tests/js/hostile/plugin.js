// TEST ONLY: a hostile connector in JavaScript, built with the SDK like any
// other. The sandbox (and the SDK's guard) must fail each of its runs with a
// clear reason and leave the host serving. `collect` reads `{"mode": ...}`:
//
// | mode | does |
// | --- | --- |
// | `ok` | reports one asset |
// | `throw` | throws `undefined` (not an Error, not a WIT error) |
// | `loop` | spins forever |
// | `alloc` | allocates without end |
// | `fetch` | fetches `url` (a host the test does not grant) |

import { connector, Observation, report } from '@tributary/plugin-sdk';

export const plugin = connector({
  name: 'hostile-js',
  version: '0.1.0',
  description: 'TEST ONLY: misbehaves on request',
  configSchema: {
    type: 'object',
    required: ['mode'],
    properties: { mode: { type: 'string' }, url: { type: 'string' } },
  },
  async collect(cfg) {
    switch (cfg.mode) {
      case 'ok':
        return report(new Observation('hostile', 'table').received(1));
      case 'throw':
        throw undefined;
      case 'loop':
        for (;;) {}
      case 'alloc': {
        const hoard = [];
        for (;;) hoard.push(new Array(1 << 16).fill(hoard.length));
      }
      case 'fetch': {
        const res = await fetch(cfg.url);
        return report(new Observation('hostile', 'table').received((await res.text()).length));
      }
      default:
        throw new Error(`unknown mode ${cfg.mode}`);
    }
  },
});
