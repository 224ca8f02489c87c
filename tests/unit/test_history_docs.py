"""The promtool command the docs give is the one the backfill's summary prints."""

from __future__ import annotations

import os
import re

import pytest

from netatmo_exporter.entrypoints.backfill import PROMTOOL_BLOCK_DURATION, blocks_directory
from tests.support.harness import REPO


@pytest.mark.parametrize("doc", ["README.md", "docs/history.md", "docs/man/netatmo-exporter.1"])
def test_every_promtool_command_in_the_docs_carries_the_block_duration(doc: str) -> None:
    text = (REPO / doc).read_text().replace("\\-", "-")
    commands = re.findall(r"^\s*(promtool tsdb create-blocks-from openmetrics.*)$", text,
                          re.MULTILINE)
    assert commands
    for command in commands:
        assert command.split()[4] == f"--max-block-duration={PROMTOOL_BLOCK_DURATION}", command


def test_the_summary_puts_the_blocks_beside_the_file() -> None:
    assert blocks_directory("/var/tmp/h/history.om") == "/var/tmp/h/history-blocks"
    assert blocks_directory("history") == os.path.abspath("history-blocks")
