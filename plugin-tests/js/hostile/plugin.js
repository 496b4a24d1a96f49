// TEST ONLY: a hostile connector in JavaScript, built with the SDK like any
// other, for the sandbox suite (plugin-tests/src/hostile.rs, run by
// plugin-tests/tests/sandbox_js.rs). The sandbox (and the SDK's guard) must
// fail each of its runs with the same clear reason as in Rust and Python, and
// leave the host serving. It also carries the JS SDK's own checks (modes
// `client` and `ids`), so one component serves both binaries' worth of tests:
// each JavaScript component costs a ComponentizeJS build and a ~30 s compile.
// Every export reads `{"mode": ...}`:
//
// | mode | does |
// | --- | --- |
// | `ok` | reports one asset |
// | `raise` | throws an Error, from every export |
// | `throw` | throws `undefined` (not an Error, not a WIT error) |
// | `loop` | spins forever |
// | `alloc` | allocates without end |
// | `http` | fetches `url` (a JSON array) and reports its length |
// | `client` | GETs `url` with the SDK's `Client` (`timeout_ms`) and reports the body's `n` |
// | `ids` | streams `count` ids through the SDK's `IdStream` |
// | `report` | reports `count` assets named by `length`-byte strings |
// | `return` | returns a number where the contract wants a record |

import {
  actionOutcome,
  Client,
  connector,
  IdStream,
  Observation,
  report,
} from '@tributary/plugin-sdk';

const RAISED = 'hostile raised on purpose';

/** The attacks every export shares; the value to return for `return`. */
function attack(cfg) {
  if (cfg.mode === 'raise') throw new Error(RAISED);
  if (cfg.mode === 'throw') throw undefined;
  if (cfg.mode === 'return') return 42;
  return null;
}

export const plugin = connector({
  name: 'hostile-js',
  version: '0.1.0',
  description: 'TEST ONLY: misbehaves on request',
  configSchema: {
    type: 'object',
    required: ['mode'],
    properties: {
      mode: { type: 'string' },
      url: { type: 'string' },
      count: { type: 'integer' },
      length: { type: 'integer' },
      timeout_ms: { type: 'integer', default: 10000 },
    },
  },
  capabilities: { resync: true, delete: true },
  async testConnection(cfg) {
    attack(cfg);
  },
  async discover(cfg) {
    return attack(cfg) ?? [];
  },
  async resync(cfg, asset, ids) {
    return attack(cfg) ?? actionOutcome({ affected: ids.length });
  },
  async delete(cfg) {
    return attack(cfg) ?? actionOutcome();
  },
  async collect(cfg) {
    const returned = attack(cfg);
    if (returned !== null) return returned;
    switch (cfg.mode) {
      case 'loop':
        for (;;) {}
      case 'alloc': {
        const hoard = [];
        for (;;) hoard.push(new Array(1 << 16).fill(hoard.length));
      }
      case 'http': {
        const res = await fetch(cfg.url);
        return report(new Observation('hostile', 'table').received((await res.json()).length));
      }
      case 'client': {
        const body = await new Client({ timeoutMs: cfg.timeout_ms }).getJson(cfg.url);
        return report(new Observation('hostile', 'table').received(body.n));
      }
      case 'ids': {
        const ids = new IdStream('hostile', 100);
        for (let i = 0; i < cfg.count; i++) ids.push(`id-${i}`);
        return report(new Observation('hostile', 'table').received(ids.finish()));
      }
      case 'report':
        return report(
          Array.from({ length: cfg.count }, (_, i) =>
            new Observation(String(i).padStart(8, '0').padEnd(cfg.length, 'x'), 'table'),
          ),
        );
      default:
        return report(new Observation('hostile', 'table').received(1));
    }
  },
});
