"""Real photographs (and rendered art) that ship inside installed packages on this kind of machine.

provguard never commits copies of these files (their licences stay with the source packages); tests
and benchmarks build their image sets from them at run time. Sources, see shared ASSETS.md:
scikit-image's ``data/`` folder, matplotlib's sample data, scikit-learn's sample images, and the
Debian packages ``mate-backgrounds`` and ``plasma-workspace-wallpapers`` (installed by ``make``).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

# Debian wallpapers that are photographs (checked by eye); every other plasma wallpaper is rendered art.
_PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
                  "Grey", "Kite", "OneStandsOut", "Path", "summer_1am", "Volna")
# scikit-image colour photographs (the grey/texture/scientific files are left out).
_SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                   "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "camera.png", "moon.png")


@dataclass(frozen=True)
class PackagedImage:
    """One packaged image: ``kind`` is ``"photo"`` or ``"art"`` (rendered, not a photograph)."""

    path: Path
    source: str
    kind: str

    @property
    def name(self) -> str:
        return f"{self.source}/{self.path.parent.parent.parent.name if self.source == 'plasma' else self.path.stem}"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _largest(folder: Path) -> Path | None:
    """The landscape image with the most pixels in a plasma wallpaper's ``images`` folder."""
    best, best_px = None, -1
    for f in folder.glob("*.*"):
        try:
            w, h = (int(v) for v in f.stem.split("x"))
        except ValueError:
            continue
        if w >= h and w * h > best_px:
            best, best_px = f, w * h
    return best


def packaged_images(kinds: tuple[str, ...] = ("photo",)) -> list[PackagedImage]:
    """All packaged images of the given kinds that exist on this machine, in a stable order."""
    found: list[PackagedImage] = []
    skimage = _package_dir("skimage")
    if skimage is not None:
        found += [PackagedImage(skimage / "data" / n, "skimage", "photo")
                  for n in _SKIMAGE_PHOTOS if (skimage / "data" / n).exists()]
    mpl = _package_dir("matplotlib")
    if mpl is not None and (mpl / "mpl-data/sample_data/grace_hopper.jpg").exists():
        found.append(PackagedImage(mpl / "mpl-data/sample_data/grace_hopper.jpg", "matplotlib", "photo"))
    sklearn = _package_dir("sklearn")
    if sklearn is not None:
        found += [PackagedImage(p, "sklearn", "photo") for p in sorted((sklearn / "datasets/images").glob("*.jpg"))]
    found += [PackagedImage(p, "mate", "photo")
              for p in sorted(Path("/usr/share/backgrounds/mate/nature").glob("*.jpg"))]
    plasma = Path("/usr/share/wallpapers")
    for folder in sorted(plasma.glob("*/contents/images")):
        best = _largest(folder)
        if best is not None:
            name = folder.parent.parent.name
            found.append(PackagedImage(best, "plasma", "photo" if name in _PLASMA_PHOTOS else "art"))
    return [img for img in found if img.kind in kinds]


def require_photos(minimum: int = 1, kinds: tuple[str, ...] = ("photo",)) -> list[PackagedImage]:
    """Like :func:`packaged_images` but raises with set-up advice when fewer than ``minimum`` exist."""
    found = packaged_images(kinds)
    if len(found) < minimum:
        raise RuntimeError(
            f"found {len(found)} packaged {'/'.join(kinds)} images, need {minimum}: run `make setup` "
            "(installs scikit-image and the Debian packages mate-backgrounds and plasma-workspace-wallpapers)")
    return found
