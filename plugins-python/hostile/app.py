"""A hostile Python connector, for the sandbox tests
(plugin-tests/tests/sandbox_python.rs): its `mode` config field picks the
attack. Each must fail its own run with the same clear reason as in Rust.
Never ship this.
"""

from dataclasses import dataclass
from typing import Optional

import tributary as t


@dataclass
class Config:
    mode: str
    url: Optional[str] = None
    bytes: int = 0


class Hostile(t.Connector):
    Config = Config

    def describe(self):
        return t.descriptor("hostile-python", "0.1.0", "Misbehaves on purpose (sandbox tests)")

    def collect(self, cfg: Config, ctx):
        if cfg.mode == "raise":
            raise ValueError("hostile raised on purpose")
        if cfg.mode == "recurse":
            def down(n):
                return down(n + 1) + 1
            down(0)
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
            return t.report(t.Observation("a", "table").received(len(rows)))
        return t.report(t.Observation("a", "table").received(1))


Plugin = t.export(Hostile)
