// Types of the Tributary JavaScript SDK (sdk.js) and of the contract it
// exports. Hand-written from plugin-sdk/wit/connector.wit (package
// tributary:connector@1.0.0): the WIT is the source of truth and build.sh
// compiles against it, so a mismatch fails the build or the example suite
// (plugin-tests/tests/example_js.rs). When connector.wit changes, update the
// "Contract" section here in the same commit.
//
// Mapping (ComponentizeJS): u64/s64 -> bigint, option<T> -> T | undefined,
// enums -> their names as strings, records -> objects with camelCase fields,
// flags -> objects of booleans, variants -> { tag, val }.

// ---------------------------------------------------------------- Contract

export interface Timestamp {
  seconds: bigint;
  nanos: number;
}
export type ErrorClassName = 'config' | 'auth' | 'transient' | 'system';
export interface WitConnectorError {
  class: ErrorClassName;
  message: string;
  retryAfterMs: bigint | undefined;
}
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export interface NamedCount {
  name: string;
  value: bigint;
}
export interface Counts {
  expected: bigint | undefined;
  received: bigint | undefined;
  errored: bigint | undefined;
  extras: NamedCount[];
}
export interface LastReceived {
  id: string;
  at: Timestamp | undefined;
}
export type StatusLevel = 'ok' | 'warn' | 'error' | 'unknown';
export interface NativeStatus {
  level: StatusLevel;
  label: string;
  message: string | undefined;
}
export interface AssetError {
  kind: string;
  message: string;
  documentId: string | undefined;
  logLink: string | undefined;
  at: Timestamp | undefined;
}
export interface ErrorTotal {
  kind: string;
  count: bigint;
}
export interface MetadataEntry {
  key: string;
  value: string;
}
export interface WitObservation {
  asset: string;
  kind: string;
  counts: Counts;
  freshness: Timestamp | undefined;
  lastReceived: LastReceived | undefined;
  nativeStatus: NativeStatus | undefined;
  errors: AssetError[];
  errorTotals: ErrorTotal[];
  metadata: MetadataEntry[];
}
export interface Report {
  observations: WitObservation[];
}
export interface AssetDescriptor {
  asset: string;
  kind: string;
  description: string | undefined;
}
export interface Capabilities {
  resync?: boolean;
  delete?: boolean;
}
export interface Descriptor {
  name: string;
  version: string;
  description: string;
  configSchema: string;
  capabilities: Capabilities;
  suggestedHosts: string[];
}
export interface RunContext {
  checkId: string;
  runId: string;
  tenant: string | undefined;
  now: Timestamp;
  deadline: Timestamp;
  lastSuccess: Timestamp | undefined;
  attempt: number;
}
export type DeleteScope = { tag: 'asset' } | { tag: 'tenant'; val: string } | { tag: 'ids'; val: string[] };
export interface ActionOutcome {
  affected: bigint | undefined;
  message: string | undefined;
}

/** The `plugin` interface as ComponentizeJS expects the export (config is JSON text). */
export interface PluginExport {
  describe(): Descriptor;
  testConnection(config: string): Promise<void>;
  discover(config: string): Promise<AssetDescriptor[]>;
  collect(config: string, context: RunContext): Promise<Report>;
  resync(config: string, asset: string, ids: string[]): Promise<ActionOutcome>;
  delete(config: string, asset: string, scope: DeleteScope): Promise<ActionOutcome>;
}

// ---------------------------------------------------------------- SDK

export declare const ErrorClass: Readonly<Record<ErrorClassName, ErrorClassName>>;
export declare const MAX_ERROR_SAMPLE: number;
export declare const ID_BATCH: number;
export declare const DEFAULT_TIMEOUT_MS: number;

export declare class ConnectorError extends Error {
  constructor(cls: ErrorClassName, message: string, retryAfterMs?: number | bigint);
  class: ErrorClassName;
  retryAfterMs: number | bigint | undefined;
  static config(message: string): ConnectorError;
  static auth(message: string): ConnectorError;
  static transient(message: string, retryAfterMs?: number | bigint): ConnectorError;
  static system(message: string): ConnectorError;
  context(what: string): ConnectorError;
}

type Fields = Record<string, unknown>;
export declare const log: ((level: LogLevel, message: string, fields?: Fields) => void) & {
  trace(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
};

export declare class IdStream {
  constructor(asset: string, batch?: number);
  push(...ids: string[]): void;
  extend(ids: Iterable<string>): void;
  flush(): void;
  /** Sends the last batch; returns how many ids were sent. */
  finish(): number;
}

export type TimeInput = Date | string | number | Timestamp | null | undefined;
export declare function timestamp(value: TimeInput): Timestamp | undefined;

export declare function assetError(
  kind: string,
  message: string,
  options?: { documentId?: string | null; logLink?: string | null; at?: TimeInput },
): AssetError;

type Count = number | bigint;
export declare class Observation {
  constructor(asset: string, kind: string);
  expected(n: Count): this;
  received(n: Count): this;
  errored(n: Count): this;
  count(name: string, n: Count): this;
  freshness(at: TimeInput): this;
  lastReceived(id: string, at?: TimeInput): this;
  nativeStatus(level: StatusLevel, label: string, message?: string): this;
  errors(errors: Iterable<AssetError>): this;
  errorTotal(kind: string, n: Count): this;
  metadata(key: string, value: unknown): this;
  build(): WitObservation;
}
export declare function report(...observations: (Observation | WitObservation | (Observation | WitObservation)[])[]): Report;
export declare function assetDescriptor(asset: string, kind: string, description?: string): AssetDescriptor;
export declare function actionOutcome(options?: { affected?: Count; message?: string }): ActionOutcome;

/** A connector definition; `Config` is the parsed, checked config object. */
export interface ConnectorDefinition<Config = Record<string, any>> {
  name: string;
  version: string;
  description?: string;
  /** JSON Schema (draft 2020-12) of the config; secret fields carry `"x-secret": true`. */
  configSchema?: object;
  capabilities?: Capabilities;
  suggestedHosts?: string[];
  testConnection?(config: Config): void | Promise<void>;
  discover?(config: Config): AssetDescriptor[] | Promise<AssetDescriptor[]>;
  collect(config: Config, context: RunContext): Report | Promise<Report>;
  resync?(config: Config, asset: string, ids: string[]): ActionOutcome | Promise<ActionOutcome>;
  delete?(config: Config, asset: string, scope: DeleteScope): ActionOutcome | Promise<ActionOutcome>;
}
export declare function connector<Config = Record<string, any>>(def: ConnectorDefinition<Config>): PluginExport;

export declare const encode: (value: string) => string;
export declare function retryAfterMs(header: string | null | undefined, nowMs?: number): number | undefined;
export declare function classifyStatus(status: number): ErrorClassName;

export declare class Response {
  readonly what: string;
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly ok: boolean;
  json<T = any>(): T;
  errorForStatus(): this;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  headers?: Record<string, string>;
  json?: unknown;
  body?: string;
  timeoutMs?: number;
}
export declare class Client {
  constructor(options?: { baseUrl?: string; headers?: Record<string, string>; bearer?: string; timeoutMs?: number });
  request(method: string, url: string, options?: RequestOptions): Promise<Response>;
  send(method: string, url: string, options?: RequestOptions): Promise<Response>;
  get(url: string, options?: RequestOptions): Promise<Response>;
  post(url: string, options?: RequestOptions): Promise<Response>;
  getJson<T = any>(url: string, options?: RequestOptions): Promise<T>;
  postJson<T = any>(url: string, json: unknown, options?: RequestOptions): Promise<T>;
}
