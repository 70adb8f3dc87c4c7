"""`docker save` against dockerd 20.10's own archive of the same image (recorded once from a real
dockerd by tests/support/golden_image.py): the same entries, modes, sizes, metadata bytes and layer
digests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from servin.images.save import selection_names, write_archive
from servin.images.service import ImageService
from tests.support import golden_image

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "data" / "dockerd_save_golden.json"


def test_save_is_what_dockerd_writes(tmp_path: Path) -> None:
    golden_image.write_archive(tmp_path / "in.tar")
    store = ImageService(tmp_path / "images")
    assert store.load_archive(tmp_path / "in.tar") == [f"Loaded image: {golden_image.TAG}"]
    out = io.BytesIO()
    write_archive(store, selection_names(store, [golden_image.TAG]), out)
    assert golden_image.describe(out.getvalue()) == json.loads(GOLDEN.read_text())
