"""Space messages say sizes that tell need and free apart: 3 significant digits, and exact bytes when even
those would look equal (a "needs 0.1 MB, 0.1 MB free" said nothing)."""
from __future__ import annotations

import re

import pytest

from musicrnn.diskspace import MARGIN, check_room, free_bytes, mb, need_and_free
from musicrnn.errors import CheckpointError


@pytest.mark.parametrize("n, text", [(0, "0 B"), (512, "512 B"), (149_000, "149 KB"), (1_234_567, "1.23 MB"),
                                     (64e9, "64.0 GB"), (123_456_789, "123 MB")])
def test_sizes_have_three_significant_digits(n, text):
    assert mb(n) == text


def test_close_sizes_fall_back_to_bytes():
    assert need_and_free(150_000, 120_000) == ("150 KB", "120 KB")
    assert need_and_free(120_300, 120_100) == ("120,300 bytes", "120,100 bytes")


def test_checkpoint_room_message_tells_need_from_free(tmp_path):
    free = free_bytes(tmp_path)
    with pytest.raises(CheckpointError) as e:
        check_room(str(tmp_path), str(tmp_path / "last.ckpt"), free - MARGIN + 4096)
    need, left = re.search(r"needs (.+), (.+) free —", str(e.value)).groups()
    assert need != left, str(e.value)
