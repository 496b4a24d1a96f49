"""{{name}}: a Tributary connector, in Python.

It watches one JSON HTTP service: `GET /v1/stats` answers how many records
arrived, how many failed and when the data last changed, and `collect`
turns that into one observation of the asset `records`. Change it to talk
to your own system; `tributary plugin test` checks it against the recorded
exchanges in tests/.
"""

from dataclasses import dataclass

import tributary as t
from tributary import ConnectorError

ASSET = "records"

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "{{name}} connector config",
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url", "token"],
    "properties": {
        "base_url": {"type": "string", "pattern": "^https?://", "description": "Base URL of the service; grant it in allowed_hosts"},
        "token": {"type": "string", "minLength": 1, "x-secret": True, "description": "API token, sent as a bearer token"},
    },
}


@dataclass
class Config:
    """The check's config, secrets resolved; the SDK refuses unknown fields."""

    base_url: str
    token: str


class Connector(t.Connector):
    Config = Config

    @staticmethod
    def client(cfg: Config) -> t.Client:
        return t.Client(cfg.base_url, bearer=cfg.token, timeout=20)

    def describe(self):
        return t.descriptor("{{name}}", "0.1.0", "Watches the records of one JSON HTTP service", config_schema=CONFIG_SCHEMA)

    def test_connection(self, cfg: Config):
        if not self.client(cfg).get_json("/v1/health").get("ok"):
            raise ConnectorError.transient("the service reports it is not healthy")

    def discover(self, cfg: Config):
        return [t.asset_descriptor(ASSET, "dataset", "Records the service received")]

    def collect(self, cfg: Config, ctx: t.RunContext):
        stats = self.client(cfg).get_json("/v1/stats")
        try:
            observation = (
                t.Observation(ASSET, "dataset")
                .received(stats["received"])
                .errored(stats.get("failed", 0))
                .freshness(stats.get("updated_at"))
            )
        except (KeyError, TypeError) as e:
            raise ConnectorError.system(f"the stats answer lacks or mistypes {e}") from None
        return t.report(observation)


# componentize-py looks for `Plugin`.
Plugin = t.export(Connector)
