"""Idle: a window with nothing to do, whose API requests the cost phase counts."""

from __future__ import annotations

import asyncio

from benchmarks.context import Context
from benchmarks.report import Figure


class Idle:
    name = "idle"

    async def run(self, ctx: Context) -> list[Figure]:
        if self.name in ctx.windows:  # the restart phase measured it already
            return []
        await ctx.op.wait_settled(timeout=120)
        await asyncio.sleep(ctx.sizes.settle_seconds)
        ctx.log(self.name, f"{ctx.sizes.idle_seconds:g}s with nothing to do")
        await ctx.open_window(self.name)
        await asyncio.sleep(ctx.sizes.idle_seconds)
        await ctx.close_window(self.name)
        return []
