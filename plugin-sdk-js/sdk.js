// The Tributary connector SDK for JavaScript.
//
// A plugin's entry module does `export const plugin = connector({...})` and
// `plugin-sdk-js/build.sh` turns it into a WebAssembly component of the
// `connector` world (plugin-sdk/wit/connector.wit) with ComponentizeJS. The
// SDK owns what every connector would otherwise get wrong:
//
// - every export is guarded: whatever a method throws (an Error, a string,
//   undefined) becomes a classified `ConnectorError`. An unguarded throw of a
//   non-WIT value traps the whole instance instead of failing one call;
// - the check's config (JSON text) is parsed and checked against the
//   connector's own JSON Schema (the one `describe` returns), so a missing or
//   mistyped field is a `config` error naming the field;
// - HTTP over `fetch` with the Rust SDK's classification (plugin-sdk/src/http.rs):
//   401/403 auth; 408, 429 and 5xx transient (with Retry-After); other 4xx
//   config; a host the check does not grant config; network failures and
//   timeouts transient; a body that is not JSON system;
// - report builders that fill every optional field of the WIT records and
//   keep at most 100 sample errors while counting all of them by kind;
// - id streaming to the host in batches (`emit-ids`), outside the report.
//
// Value mapping (ComponentizeJS): WIT `u64`/`s64` are BigInt, `option<T>` is
// `undefined` or the value, enums are their kebab-case names as strings,
// records are objects with camelCase fields. Builders accept plain numbers
// and convert.

import { log as hostLog, emitIds } from 'tributary:connector/host@1.0.0';

/** How a failure is handled: only `transient` errors are retried. */
export const ErrorClass = Object.freeze({
  config: 'config',
  auth: 'auth',
  transient: 'transient',
  system: 'system',
});

/** At most this many errors are kept as a sample per observation. */
export const MAX_ERROR_SAMPLE = 100;
/** Ids are handed to the host in batches of this size. */
export const ID_BATCH = 10_000;
/** Default timeout of one HTTP request, ms. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** How much of an error response's body goes into the error message. */
const ERROR_BODY_SNIPPET = 300;

/**
 * A classified failure. Throw it (or let the SDK turn anything else you
 * throw into a `system` one).
 */
export class ConnectorError extends Error {
  constructor(cls, message, retryAfterMs) {
    super(message);
    this.name = 'ConnectorError';
    this.class = cls;
    this.retryAfterMs = retryAfterMs;
  }
  static config(message) {
    return new ConnectorError('config', message);
  }
  static auth(message) {
    return new ConnectorError('auth', message);
  }
  static transient(message, retryAfterMs) {
    return new ConnectorError('transient', message, retryAfterMs);
  }
  static system(message) {
    return new ConnectorError('system', message);
  }
  /** The same error with `what: ` in front of its message. */
  context(what) {
    return new ConnectorError(this.class, `${what}: ${this.message}`, this.retryAfterMs);
  }
}

/** Turn anything thrown into the WIT `connector-error` record. */
function toWitError(thrown) {
  if (thrown instanceof ConnectorError && ErrorClass[thrown.class]) {
    return {
      class: thrown.class,
      message: String(thrown.message),
      retryAfterMs: toU64Option(thrown.retryAfterMs),
    };
  }
  // A host import (emit-ids) failing throws its `connector-error` payload.
  const payload = thrown && typeof thrown === 'object' && 'payload' in thrown ? thrown.payload : thrown;
  if (payload && typeof payload === 'object' && ErrorClass[payload.class] && typeof payload.message === 'string') {
    return { class: payload.class, message: payload.message, retryAfterMs: toU64Option(payload.retryAfterMs) };
  }
  let message;
  try {
    message =
      thrown instanceof Error
        ? `the plugin failed: ${thrown.name}: ${thrown.message}`
        : `the plugin threw ${typeof thrown === 'string' ? JSON.stringify(thrown) : String(thrown)}, not an Error`;
  } catch {
    message = 'the plugin threw a value that cannot be printed';
  }
  return { class: 'system', message, retryAfterMs: undefined };
}

function toU64Option(value) {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'bigint' ? value : Math.max(0, Math.round(Number(value)));
  return BigInt(n);
}

function toU64(value, what) {
  if (typeof value === 'bigint') {
    if (value < 0n) throw ConnectorError.system(`${what} must not be negative, got ${value}`);
    return value;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw ConnectorError.system(`${what} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return BigInt(value);
}

// ---------------------------------------------------------------------------
// Logging and ids

/**
 * Write a log line to the daemon's log (with the check and plugin).
 * `fields` is an object; values are turned into strings. Never pass secrets.
 */
export function log(level, message, fields = {}) {
  hostLog(level, String(message), Object.entries(fields).map(([k, v]) => [k, String(v)]));
}
log.trace = (m, f) => log('trace', m, f);
log.debug = (m, f) => log('debug', m, f);
log.info = (m, f) => log('info', m, f);
log.warn = (m, f) => log('warn', m, f);
log.error = (m, f) => log('error', m, f);

/**
 * Buffers ids seen on one asset and hands them to the host in batches, so
 * millions of ids never sit in memory or in the report. Call `finish()` at
 * the end: it sends the last batch and returns how many ids were sent.
 */
export class IdStream {
  constructor(asset, batch = ID_BATCH) {
    this.asset = asset;
    this.batch = batch;
    this.buffer = [];
    this.sent = 0;
  }
  push(...ids) {
    this.extend(ids);
  }
  extend(ids) {
    for (const id of ids) {
      this.buffer.push(String(id));
      if (this.buffer.length >= this.batch) this.flush();
    }
  }
  flush() {
    if (this.buffer.length === 0) return;
    // Throws the host's connector-error (e.g. the run's id limit); the
    // export guard passes it on unchanged.
    emitIds(this.asset, this.buffer);
    this.sent += this.buffer.length;
    this.buffer = [];
  }
  finish() {
    this.flush();
    return this.sent;
  }
}

// ---------------------------------------------------------------------------
// Time

/**
 * A WIT timestamp from a Date, RFC 3339 text, or milliseconds since the
 * epoch; `undefined`/`null` stay `undefined`. Bad text is a `system` error
 * (the service answered something unusable).
 */
export function timestamp(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object' && 'seconds' in value && 'nanos' in value) return value;
  let ms;
  let nanos = null;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = value;
  else if (typeof value === 'string') {
    ms = Date.parse(value);
    // Keep sub-millisecond digits that Date drops.
    const frac = /\.(\d+)(?:Z|[+-]\d\d:?\d\d)$/i.exec(value);
    if (frac) nanos = Number(frac[1].slice(0, 9).padEnd(9, '0'));
  } else ms = NaN;
  if (!Number.isFinite(ms)) throw ConnectorError.system(`not a timestamp: ${JSON.stringify(value)}`);
  const seconds = Math.floor(ms / 1000);
  return { seconds: BigInt(seconds), nanos: nanos ?? (ms - seconds * 1000) * 1_000_000 };
}

// ---------------------------------------------------------------------------
// Report builders

/** One sample error of an observation. */
export function assetError(kind, message, { documentId, logLink, at } = {}) {
  return {
    kind: String(kind),
    message: String(message),
    documentId: documentId ?? undefined,
    logLink: logLink ?? undefined,
    at: timestamp(at),
  };
}

/** What one run says of one asset; `build()` gives the WIT record. */
export class Observation {
  constructor(asset, kind) {
    this.asset = String(asset);
    this.kind = String(kind);
    this.counts = { expected: undefined, received: undefined, errored: undefined, extras: [] };
    this._freshness = undefined;
    this._lastReceived = undefined;
    this._nativeStatus = undefined;
    this._errors = [];
    this._totals = new Map();
    this._metadata = [];
  }
  expected(n) {
    this.counts.expected = toU64(n, 'expected');
    return this;
  }
  received(n) {
    this.counts.received = toU64(n, 'received');
    return this;
  }
  errored(n) {
    this.counts.errored = toU64(n, 'errored');
    return this;
  }
  count(name, n) {
    this.counts.extras.push({ name: String(name), value: toU64(n, name) });
    return this;
  }
  freshness(at) {
    this._freshness = timestamp(at);
    return this;
  }
  lastReceived(id, at) {
    this._lastReceived = { id: String(id), at: timestamp(at) };
    return this;
  }
  /** `level`: ok | warn | error | unknown. */
  nativeStatus(level, label, message) {
    this._nativeStatus = { level, label: String(label), message: message ?? undefined };
    return this;
  }
  /** Add errors (from `assetError`): all are counted, 100 kept as a sample. */
  errors(errors) {
    for (const e of errors) {
      this._totals.set(e.kind, (this._totals.get(e.kind) ?? 0n) + 1n);
      if (this._errors.length < MAX_ERROR_SAMPLE) this._errors.push(e);
    }
    return this;
  }
  /** Count `n` more errors of `kind` beyond the sample (e.g. vendor totals). */
  errorTotal(kind, n) {
    this._totals.set(kind, (this._totals.get(kind) ?? 0n) + toU64(n, kind));
    return this;
  }
  metadata(key, value) {
    this._metadata.push({ key: String(key), value: String(value) });
    return this;
  }
  build() {
    return {
      asset: this.asset,
      kind: this.kind,
      counts: this.counts,
      freshness: this._freshness,
      lastReceived: this._lastReceived,
      nativeStatus: this._nativeStatus,
      errors: this._errors,
      errorTotals: [...this._totals].map(([kind, count]) => ({ kind, count })),
      metadata: this._metadata,
    };
  }
}

/** A report from observations (builders or records). */
export function report(...observations) {
  return { observations: observations.flat().map((o) => (o instanceof Observation ? o.build() : o)) };
}

/** An asset `discover` found. */
export function assetDescriptor(asset, kind, description) {
  return { asset: String(asset), kind: String(kind), description: description ?? undefined };
}

/** What a `resync` or `delete` did. */
export function actionOutcome({ affected, message } = {}) {
  return { affected: toU64Option(affected), message: message ?? undefined };
}

// ---------------------------------------------------------------------------
// Config

/**
 * Check `config` (already parsed) against the subset of JSON Schema a
 * connector config uses: `type` object with `properties`, `required`,
 * `additionalProperties: false`, `default`; property `type` (string,
 * boolean, integer, number, array, object), `minLength`, `pattern`, `enum`.
 * The daemon validates the full schema before the plugin runs; this keeps
 * the harness and direct calls just as strict, with the field in the message.
 */
function checkConfig(schema, config) {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw ConnectorError.config('the config must be a JSON object');
  }
  const props = schema.properties ?? {};
  for (const name of schema.required ?? []) {
    if (!(name in config)) throw ConnectorError.config(`config: missing field \`${name}\``);
  }
  const out = {};
  for (const [name, value] of Object.entries(config)) {
    const prop = props[name];
    if (!prop) {
      if (schema.additionalProperties === false) {
        const known = Object.keys(props).map((k) => `\`${k}\``).join(', ');
        throw ConnectorError.config(`config: unknown field \`${name}\`, expected one of ${known}`);
      }
      out[name] = value;
      continue;
    }
    checkValue(name, prop, value);
    out[name] = value;
  }
  for (const [name, prop] of Object.entries(props)) {
    if (!(name in out) && 'default' in prop) out[name] = prop.default;
  }
  return out;
}

function checkValue(name, prop, value) {
  const types = prop.type === undefined ? [] : [].concat(prop.type);
  const actual = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  const ok =
    types.length === 0 ||
    types.some((t) => t === actual || (t === 'integer' && Number.isInteger(value)) || (t === 'number' && actual === 'number'));
  if (!ok) throw ConnectorError.config(`config: field \`${name}\` must be ${types.join(' or ')}, got ${actual}`);
  if (typeof value === 'string') {
    if (prop.minLength !== undefined && value.length < prop.minLength) {
      throw ConnectorError.config(`config: field \`${name}\` must have at least ${prop.minLength} character(s)`);
    }
    if (prop.pattern !== undefined && !new RegExp(prop.pattern, 'u').test(value)) {
      // The value may be a secret: name the rule, not the value.
      throw ConnectorError.config(`config: field \`${name}\` must match ${prop.pattern}`);
    }
  }
  if (prop.enum !== undefined && !prop.enum.some((v) => v === value)) {
    throw ConnectorError.config(`config: field \`${name}\` must be one of ${JSON.stringify(prop.enum)}`);
  }
}

function parseConfig(schema, text) {
  let config;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw ConnectorError.config(`the config is not valid JSON: ${e.message}`);
  }
  return checkConfig(schema, config);
}

// ---------------------------------------------------------------------------
// The export object

/**
 * Build the `plugin` export from a connector definition:
 *
 * ```js
 * export const plugin = connector({
 *   name, version, description,
 *   configSchema: { ... },          // JSON Schema object of the config
 *   capabilities: { resync: true }, // which optional actions exist
 *   suggestedHosts: [],
 *   async testConnection(config) {},
 *   async discover(config) { return [assetDescriptor(...)]; },
 *   async collect(config, context) { return report(...); },
 *   async resync(config, asset, ids) { return actionOutcome(...); },
 *   async delete(config, asset, scope) { return actionOutcome(...); },
 * });
 * ```
 *
 * Methods receive the parsed, checked config object. Every method is
 * guarded: anything thrown becomes a classified error, never a trap.
 */
export function connector(def) {
  // Mistakes in the definition fail the build (ComponentizeJS runs this at
  // initialisation), not a run in production.
  const missing = ['name', 'version'].filter((k) => typeof def?.[k] !== 'string');
  if (missing.length) throw new TypeError(`connector(): \`${missing.join('`, `')}\` must be a string`);
  if (typeof def.collect !== 'function') throw new TypeError('connector(): `collect` must be a function');
  for (const action of ['resync', 'delete']) {
    if (def.capabilities?.[action] && typeof def[action] !== 'function') {
      throw new TypeError(`connector(): capability \`${action}\` is declared but \`${action}\` is not a function`);
    }
  }
  const schema = def.configSchema ?? { type: 'object' };
  const schemaText = JSON.stringify(schema);
  const capabilities = { resync: Boolean(def.capabilities?.resync), delete: Boolean(def.capabilities?.delete) };

  // `describe` has no error in the contract: its answer is made here, at
  // build time, so no code of the connector's runs when the daemon asks.
  const descriptor = {
    name: String(def.name),
    version: String(def.version),
    description: String(def.description ?? ''),
    configSchema: schemaText,
    capabilities,
    suggestedHosts: (def.suggestedHosts ?? []).map(String),
  };

  // Every export runs the method and shapes its result inside the guard, so
  // a result the contract cannot carry is a `system` error naming it rather
  // than a trap when the host reads it.
  const guard = (name, fn, shape) =>
    async function (configText, ...args) {
      try {
        if (typeof fn !== 'function') {
          throw ConnectorError.config(`this connector does not implement \`${name}\``);
        }
        return shape(await fn.call(def, parseConfig(schema, configText), ...args), name);
      } catch (thrown) {
        // ComponentizeJS turns a thrown WIT record into `err(...)`.
        throw toWitError(thrown);
      }
    };

  return {
    describe() {
      return descriptor;
    },
    testConnection: guard('testConnection', def.testConnection, () => undefined),
    discover: guard('discover', def.discover, toAssets),
    collect: guard('collect', def.collect, toReport),
    resync: guard('resync', def.resync, toOutcome),
    delete: guard('delete', def.delete, toOutcome),
  };
}

/** What a method returned, for an error message. */
function kindOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? `an object (${value.constructor?.name ?? 'no class'})` : typeof value;
}

function toAssets(assets, name) {
  if (!Array.isArray(assets)) {
    throw ConnectorError.system(`\`${name}\` returned ${kindOf(assets)}, expected an array of assetDescriptor(...)`);
  }
  return assets.map((a) => {
    if (!a || typeof a !== 'object') {
      throw ConnectorError.system(`\`${name}\` returned ${kindOf(a)} in its array, expected assetDescriptor(...)`);
    }
    return { ...a, description: a.description ?? undefined };
  });
}

function toReport(r, name) {
  if (r === undefined || r === null) return report();
  if (Array.isArray(r?.observations)) return report(r.observations);
  // One observation, built or as the contract's record.
  if (r instanceof Observation || Array.isArray(r) || typeof r?.asset === 'string') return report(r);
  throw ConnectorError.system(`\`${name}\` returned ${kindOf(r)}, expected report(...)`);
}

function toOutcome(outcome, name) {
  if (outcome === undefined || outcome === null) return actionOutcome();
  if (typeof outcome !== 'object' || Array.isArray(outcome)) {
    throw ConnectorError.system(`\`${name}\` returned ${kindOf(outcome)}, expected actionOutcome(...)`);
  }
  return outcome;
}

// ---------------------------------------------------------------------------
// HTTP

/** Percent-encode one URL path segment or query value. */
export const encode = encodeURIComponent;

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP-date
 * (`undefined` when absent or unreadable).
 */
export function retryAfterMs(header, nowMs = Date.now()) {
  if (header === null || header === undefined) return undefined;
  const text = String(header).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

/** The class of an HTTP error status (the Rust SDK's rules). */
export function classifyStatus(status) {
  if (status === 401 || status === 403) return 'auth';
  if (status === 408 || status === 429 || status >= 500) return 'transient';
  return 'config';
}

/** A response read in full. */
export class Response {
  constructor(what, status, headers, text) {
    this.what = what;
    this.status = status;
    this.headers = headers;
    this.text = text;
  }
  get ok() {
    return this.status >= 200 && this.status < 300;
  }
  /** The body as JSON; a body that is not JSON is a `system` error. */
  json() {
    try {
      return JSON.parse(this.text);
    } catch (e) {
      throw ConnectorError.system(`${this.what}: the response is not JSON: ${e.message}`);
    }
  }
  /** This response, or a classified error when the status is not 2xx. */
  errorForStatus() {
    if (this.ok) return this;
    const cls = classifyStatus(this.status);
    const snippet = this.text.length > ERROR_BODY_SNIPPET ? `${this.text.slice(0, ERROR_BODY_SNIPPET)}…` : this.text;
    const message = `${this.what}: HTTP ${this.status}${snippet ? `: ${snippet}` : ''}`;
    const retry = cls === 'transient' ? retryAfterMs(this.headers.get('retry-after')) : undefined;
    throw new ConnectorError(cls, message, retry);
  }
}

/**
 * A JSON HTTP client over `fetch`: base URL, headers sent on every request
 * (auth) and a timeout.
 *
 * ```js
 * const api = new Client({ baseUrl: cfg.base_url, bearer: cfg.token, timeoutMs: 20_000 });
 * const stats = await api.getJson('/v1/stats', { query: { tenant } });
 * const res = await api.request('GET', '/v1/x');      // any status
 * ```
 */
export class Client {
  constructor({ baseUrl, headers = {}, bearer, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    this.baseUrl = baseUrl === undefined ? undefined : String(baseUrl).replace(/\/+$/, '');
    this.headers = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    if (bearer !== undefined) this.headers.authorization = `Bearer ${bearer}`;
    this.timeoutMs = timeoutMs;
  }

  resolve(url) {
    if (/^https?:\/\//i.test(url)) return url;
    if (this.baseUrl === undefined) {
      throw ConnectorError.config(`relative URL ${JSON.stringify(url)} but the HTTP client has no base URL`);
    }
    return url.startsWith('/') ? `${this.baseUrl}${url}` : `${this.baseUrl}/${url}`;
  }

  /**
   * Send a request and read the whole response, whatever its status.
   * Options: `query` (object), `headers`, `json` (a body to send as JSON),
   * `body` (text), `timeoutMs`. Transport failures are classified errors.
   */
  async request(method, url, { query, headers = {}, json, body, timeoutMs = this.timeoutMs } = {}) {
    let full = this.resolve(url);
    const what = `${method} ${full}`; // before the query: it may hold secrets
    if (query) {
      const q = Object.entries(query)
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => `${encode(k)}=${encode(String(v))}`)
        .join('&');
      if (q) full += (full.includes('?') ? '&' : '?') + q;
    }
    const allHeaders = { ...this.headers };
    for (const [k, v] of Object.entries(headers)) allHeaders[k.toLowerCase()] = String(v);
    if (json !== undefined) {
      body = JSON.stringify(json);
      allHeaders['content-type'] ??= 'application/json';
    }
    const controller = typeof AbortController === 'function' ? new AbortController() : undefined;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => {
        controller?.abort();
        reject(ConnectorError.transient(`${what}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      const exchange = (async () => {
        let res;
        try {
          res = await fetch(full, { method, headers: allHeaders, body, signal: controller?.signal });
        } catch (e) {
          throw fetchError(what, e);
        }
        let text;
        try {
          text = await res.text();
        } catch (e) {
          throw ConnectorError.transient(`${what}: reading the response failed: ${e?.message ?? e}`);
        }
        return new Response(what, res.status, res.headers, text);
      })();
      return await Promise.race([exchange, timeout]);
    } finally {
      // A pending timer would keep the call alive until it fires.
      clearTimeout(timer);
    }
  }

  /** Send; a status that is not 2xx becomes a classified error. */
  async send(method, url, options) {
    return (await this.request(method, url, options)).errorForStatus();
  }
  async get(url, options) {
    return this.send('GET', url, options);
  }
  async post(url, options) {
    return this.send('POST', url, options);
  }
  /** GET and parse the JSON body. */
  async getJson(url, options) {
    return (await this.get(url, options)).json();
  }
  /** POST `json` as the body and parse the JSON answer. */
  async postJson(url, json, options = {}) {
    return (await this.post(url, { ...options, json })).json();
  }
}

/** A rejected `fetch`: the sandbox's refusal is `config`, the rest `transient`. */
function fetchError(what, e) {
  if (e instanceof ConnectorError) return e;
  const detail = `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
  if (/denied|not allowed|forbidden/i.test(detail)) {
    return ConnectorError.config(`${what}: the check does not grant this host (add its origin to allowed_hosts): ${detail}`);
  }
  return ConnectorError.transient(`${what}: ${detail}`);
}
