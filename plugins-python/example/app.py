"""The example connector, in Python.

The same connector as the Rust one in plugins/example/src/lib.rs (read its
docs for the service's API): it watches a JSON HTTP service that reports,
per tenant, how many documents it expected, received and failed to process,
and turns one `collect` into one observation of the asset `documents`. It
passes the same suite (plugin-tests/src/lib.rs).

Build: plugin-sdk-python/build.sh plugins-python/example -o example.wasm
"""

from dataclasses import dataclass

import tributary as t
from tributary import ConnectorError, log
from tributary.http import encode

#: The asset this connector reports on: a tenant's documents.
ASSET = "documents"
#: How many ids to ask for per page when `collect_ids` is on.
ID_PAGE_SIZE = 1000

VERSION = "0.1.0"

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "example connector config",
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url", "tenant", "token"],
    "properties": {
        "base_url": {
            "type": "string",
            "pattern": "^https?://",
            "description": "Base URL of the service, e.g. https://intake.example.com; grant it in allowed_hosts",
        },
        "tenant": {"type": "string", "minLength": 1, "description": "The tenant whose documents to watch"},
        "token": {
            "type": "string",
            "minLength": 1,
            "x-secret": True,
            "description": "API token, sent as a bearer token",
        },
        "collect_ids": {
            "type": "boolean",
            "default": False,
            "description": "Also list received document ids (one request per 1000 documents)",
        },
    },
}


@dataclass
class Config:
    """The check's plugin config (secrets resolved). The SDK refuses unknown
    fields, so a typo such as `colect_ids` is a clear `config` error."""

    base_url: str
    tenant: str
    token: str
    collect_ids: bool = False


class Example(t.Connector):
    Config = Config

    @staticmethod
    def client(cfg: Config) -> t.Client:
        return t.Client(cfg.base_url, bearer=cfg.token, timeout=20)

    @staticmethod
    def tenant_path(cfg: Config) -> str:
        return f"/v1/tenants/{encode(cfg.tenant)}"

    def describe(self):
        return t.descriptor(
            "example",
            VERSION,
            "Example connector: watches a tenant's document intake in a JSON HTTP service",
            config_schema=CONFIG_SCHEMA,
            # We implement `resync` below; say so, or the daemon never calls it.
            capabilities=t.Capabilities.RESYNC,
        )

    def test_connection(self, cfg: Config):
        # The health endpoint needs a valid token: a 200 proves both.
        if not self.client(cfg).get_json("/v1/health").get("ok"):
            raise ConnectorError.transient("the service reports it is not healthy")

    def discover(self, cfg: Config):
        return [t.asset_descriptor(ASSET, "documents", f"Documents received for tenant {cfg.tenant}")]

    def collect(self, cfg: Config, ctx: t.RunContext):
        client = self.client(cfg)
        # Without the status check, so a 404 can say which tenant is unknown.
        response = client.get(f"{self.tenant_path(cfg)}/stats", check_status=False)
        if response.status == 404:
            raise ConnectorError.config(f"tenant {cfg.tenant!r} not found at {cfg.base_url}")
        stats = response.raise_for_status().json()
        try:
            docs = stats["documents"]
            observation = (
                t.Observation(ASSET, "documents")
                .received(docs["received"])
                .errored(docs.get("failed", 0))
                .expected(docs.get("expected"))
                .freshness(stats.get("updated_at"))
                .metadata("tenant", cfg.tenant)
            )
            last = stats.get("last_received")
            if last:
                observation.last_received(last["id"], last.get("at"))
            observation.errors(
                t.asset_error(e["kind"], e["message"], e.get("document_id"), e.get("log_url"), e.get("at"))
                for e in stats.get("errors", [])
            )
        except (KeyError, TypeError) as e:
            raise ConnectorError.system(f"the stats answer lacks or mistypes {e}") from None

        if cfg.collect_ids:
            sent = self.stream_ids(client, cfg)
            log.info("streamed document ids", {"tenant": cfg.tenant, "ids": sent})

        log.info(
            "collected document stats",
            {"tenant": cfg.tenant, "received": docs["received"], "failed": docs.get("failed", 0),
             "attempt": ctx.attempt},
        )
        return t.report(observation)

    def stream_ids(self, client: t.Client, cfg: Config) -> int:
        """Page through the tenant's document ids and hand them to the host."""
        ids = t.IdStream(ASSET)
        path = f"{self.tenant_path(cfg)}/documents/ids"
        cursor = None
        while True:
            try:
                page = client.get_json(path, query={"cursor": cursor, "limit": ID_PAGE_SIZE})
            except ConnectorError as e:
                raise e.context("listing document ids") from None
            ids.extend(page["ids"])
            following = page.get("next_cursor")
            if following is not None and following == cursor:
                # A service handing back the cursor we sent would loop until the deadline.
                raise ConnectorError.system(f"the ids endpoint returned the same cursor {following!r} twice")
            if not following:
                break
            cursor = following
        return ids.finish()

    def resync(self, cfg: Config, asset: str, ids):
        if asset != ASSET:
            raise ConnectorError.config(f"unknown asset {asset!r}: this connector only has {ASSET!r}")
        # An empty list means "everything": the service reads it the same way.
        accepted = self.client(cfg).post_json(f"{self.tenant_path(cfg)}/documents/resync", {"ids": ids})["accepted"]
        return t.action_outcome(accepted, f"the service accepted {accepted} document(s) for resync")


# Wire `Example` to the component's exports (componentize-py looks for `Plugin`).
Plugin = t.export(Example)
