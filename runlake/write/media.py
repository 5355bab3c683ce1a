"""What `log()` takes besides numbers and strings, as W&B defines them: Histogram, Image, Table.

A histogram is JSON in the history's text column. Images (PNG) and tables (Parquet) are files
in the root, `media/<project>/<run_id>/{images,tables}/<key>_<step>_<hash>.<ext>`, and the
history holds a JSON reference to the file (`_type`, `path` relative to the root, `sha256`, ...).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MAX_BINS = 512  # W&B's limit


class Histogram:
    """`runlake.Histogram(sequence=…, np_histogram=…, num_bins=64)`, as `wandb.Histogram`."""

    def __init__(
        self, sequence: Sequence[Any] | np.ndarray | None = None, np_histogram: Any = None, num_bins: int = 64
    ) -> None:
        if np_histogram is not None:
            if len(np_histogram) != 2:
                raise ValueError("np_histogram must be a tuple (values, bin_edges), as np.histogram returns")
            values, bins = np_histogram
            self.histogram = list(np.asarray(values).tolist())
            self.bins = [float(b) for b in np.asarray(bins).tolist()]
        elif sequence is not None:
            if not isinstance(num_bins, int) or isinstance(num_bins, bool) or num_bins < 1:
                raise ValueError(f"num_bins must be a positive int, got {num_bins!r}")
            data = np.asarray(sequence, dtype=float).reshape(-1)
            counts, edges = np.histogram(data, bins=num_bins)
            self.histogram = counts.tolist()
            self.bins = edges.tolist()
        else:
            raise ValueError("Histogram needs a sequence or np_histogram=(values, bin_edges)")
        if len(self.histogram) > MAX_BINS:
            raise ValueError(f"a histogram has at most {MAX_BINS} bins, got {len(self.histogram)}")
        if len(self.histogram) + 1 != len(self.bins):
            raise ValueError("len(bins) must be len(values) + 1")

    def to_json(self) -> dict[str, Any]:
        return {"_type": "histogram", "values": self.histogram, "bins": self.bins}

    def __repr__(self) -> str:
        return f"<runlake.Histogram {len(self.histogram)} bins>"


# Where a media object's file goes: put(kind, data, suffix, name) writes `data` as a file of
# that kind (named by `name`, the step and its content) and returns {"path", "sha256", "size"}.
Put = Callable[[str, bytes, str, str], dict[str, Any]]


class Media:
    """A logged object stored as a file (or files) in the root; the row keeps `store()`'s reference."""

    kind = ""
    suffix = ""

    def encode(self) -> bytes:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def store(self, put: Put, name: str) -> dict[str, Any]:
        """Write this object's file(s) through `put`; the reference the history row holds."""
        data = self.encode()
        return {"_type": f"{self.kind}-file", **put(self.kind, data, self.suffix, name), **self.describe()}

    def reference(self, data: bytes, path: str) -> dict[str, Any]:
        return {
            "_type": f"{self.kind}-file",
            "path": path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            **self.describe(),
        }


class MediaList(Media):
    """A list of media logged as one value (W&B's `[wandb.Image(...), ...]`): each stored as
    its own file; the row holds {"_type": "images/separated" (W&B's name, for images) or
    "media-list", "count": n, "items": [reference, ...]}."""

    kind = "list"

    def __init__(self, items: Sequence[Media]) -> None:
        self.items = list(items)

    def store(self, put: Put, name: str) -> dict[str, Any]:
        images = all(isinstance(item, Image) for item in self.items)
        return {
            "_type": "images/separated" if images else "media-list",  # W&B's name for a list of images
            "count": len(self.items),
            "items": [item.store(put, f"{name}_{i}") for i, item in enumerate(self.items)],
        }


class Unsupported:
    """W&B media types runlake does not store: constructing one says so (never silently)."""

    what = ""

    def __init__(self, *_: Any, **__: Any) -> None:
        raise NotImplementedError(
            f"runlake does not store {self.what} (wandb.{type(self).__name__}); log a rendered "
            "runlake.Image of it, or its data as a runlake.Table"
        )


class Object3D(Unsupported):
    what = "3D point clouds and meshes"


class Molecule(Unsupported):
    what = "molecules"


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_name(key: str, step: int, data: bytes, suffix: str) -> str:
    """`<key>_<step>_<hash>.<suffix>`: the key made safe for any filesystem, the hash of the bytes."""
    safe = _SAFE.sub("_", key)[:100].strip("._") or "media"
    return f"{safe}_{step}_{hashlib.sha256(data).hexdigest()[:20]}{suffix}"


class Image(Media):
    """`runlake.Image(data_or_path, mode=None, caption=None)`: a numpy array (H×W, H×W×3 or
    H×W×4; floats in [0, 1] are scaled to 0-255, as W&B does), a PIL image, an image file, or a
    matplotlib figure (or `matplotlib.pyplot` itself: its current figure), drawn to PNG."""

    kind = "image"
    suffix = ".png"

    def __init__(
        self, data_or_path: Any, mode: str | None = None, caption: str | None = None, **_: Any
    ) -> None:
        try:
            from PIL import Image as PILImage
        except ImportError:  # pragma: no cover - pillow is a dependency
            raise ImportError("runlake.Image needs pillow: pip install pillow") from None
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"caption must be a str, got {type(caption).__name__}")
        self.caption = caption
        image: Any
        if isinstance(data_or_path, str | os.PathLike):
            path = os.fspath(data_or_path)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"runlake.Image: no image file at {path!r}")
            try:
                image = PILImage.open(path)
                image.load()
            except Exception as exc:  # noqa: BLE001 - any decoder error
                raise ValueError(f"runlake.Image: {path!r} is not an image pillow can read ({exc})") from None
        elif isinstance(data_or_path, PILImage.Image):
            image = data_or_path
        elif (figure := matplotlib_figure(data_or_path)) is not None:
            out = io.BytesIO()
            figure.savefig(out, format="png")
            out.seek(0)
            image = PILImage.open(out)
            image.load()
        else:
            array = np.asarray(data_or_path)
            if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
                array = np.moveaxis(array, 0, -1)  # channels first (a torch tensor) -> last
            if array.ndim == 3 and array.shape[-1] == 1:
                array = array[..., 0]
            if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
                raise ValueError(
                    f"runlake.Image: an array must be H×W, H×W×3 or H×W×4, got shape {array.shape}"
                )
            if array.dtype.kind == "f":
                if array.size and np.nanmax(array) <= 1.0:
                    array = array * 255
                array = np.clip(np.nan_to_num(array), 0, 255)
            image = PILImage.fromarray(array.astype(np.uint8), mode=mode)
        self._image = image.convert(mode) if mode and image.mode != mode else image

    def encode(self) -> bytes:
        out = io.BytesIO()
        self._image.save(out, format="PNG")
        return out.getvalue()

    def describe(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": "png", "width": self._image.width, "height": self._image.height}
        if self.caption is not None:
            doc["caption"] = self.caption
        return doc


def matplotlib_figure(value: Any) -> Any:
    """The matplotlib Figure `value` is, or the current figure when it is `matplotlib.pyplot`
    (W&B takes both); None for anything else. Never imports matplotlib itself."""
    module = getattr(value, "__name__", None)
    if module == "matplotlib.pyplot":
        return value.gcf()
    cls = type(value)
    if cls.__module__.startswith("matplotlib.") and callable(getattr(value, "savefig", None)):
        return value
    return None
