"""A hostile Python connector, for the sandbox suite (plugin-tests/src/hostile.rs,
run by plugin-tests/tests/sandbox_python.rs): its `mode` config field picks
the attack, the same modes as the Rust and JavaScript hostile plugins. Each
must fail its own run with the same clear reason as in Rust. Never ship this.

Python only: `exit` raises SystemExit (not an Exception), and `describe`
raises whenever it is called after the build (see `describe`).
"""

import sys
from dataclasses import dataclass
from typing import Optional

import tributary as t

RAISED = "hostile raised on purpose"

#: Set by the first `describe`, which the SDK makes at build time.
_described = False


@dataclass
class Config:
    mode: str
    url: Optional[str] = None
    bytes: int = 0
    count: int = 0
    length: int = 0


def _attack(cfg: Config) -> None:
    """The attacks every export shares."""
    if cfg.mode == "raise":
        raise ValueError(RAISED)
    if cfg.mode == "exit":
        sys.exit(3)
    if cfg.mode == "recurse":
        def down(n):
            return down(n + 1) + 1
        down(0)


class Hostile(t.Connector):
    Config = Config

    def describe(self):
        # The snapshot the component starts from was taken after the build's
        # call: every call in the daemon raises.
        global _described
        if _described:
            raise RuntimeError(f"describe: {RAISED}")
        _described = True
        return t.descriptor("hostile-python", "0.1.0", "Misbehaves on purpose (sandbox tests)",
                            capabilities=t.Capabilities.RESYNC | t.Capabilities.DELETE)

    def test_connection(self, cfg: Config):
        _attack(cfg)

    def discover(self, cfg: Config):
        _attack(cfg)
        return []

    def resync(self, cfg: Config, asset, ids):
        _attack(cfg)
        return t.action_outcome(len(ids))

    def delete(self, cfg: Config, asset, scope):
        _attack(cfg)
        return t.action_outcome()

    def collect(self, cfg: Config, ctx):
        _attack(cfg)
        if cfg.mode == "loop":
            n = 0
            while True:
                n += 1
        if cfg.mode == "alloc":
            hoard = []
            while True:
                hoard.append(bytearray(cfg.bytes or (8 << 20)))
        if cfg.mode == "http":
            rows = t.Client().get_json(cfg.url)
            return t.report(t.Observation("hostile", "table").received(len(rows)))
        if cfg.mode == "report":
            return t.report(*(t.Observation(f"{i:08}".ljust(cfg.length, "x"), "table")
                              for i in range(cfg.count)))
        if cfg.mode == "none":
            return None
        return t.report(t.Observation("hostile", "table").received(1))


Plugin = t.export(Hostile)
