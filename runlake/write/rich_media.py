"""Audio, Video, Html and Plotly, as W&B has them: each stored as a file in the root the way an
Image is (`media/<project>/<run_id>/<kind>s/<key>_<step>_<hash>.<ext>`), the history row holding
its reference. Encoders are the standard library's (`wave`) and Pillow's (an animated GIF), so
none needs a new dependency; a file given by path is stored as it is."""

from __future__ import annotations

import io
import os
import wave
from typing import Any

import numpy as np

from .media import Media, matplotlib_figure

_AUDIO_TYPES = {".wav": "wav", ".mp3": "mp3", ".flac": "flac", ".ogg": "ogg", ".m4a": "m4a"}
_VIDEO_TYPES = {".gif": "gif", ".mp4": "mp4", ".webm": "webm", ".ogg": "ogg", ".ogv": "ogg", ".mov": "mov"}


def _read_file(path: str, kinds: dict[str, str], what: str) -> tuple[bytes, str]:
    ext = os.path.splitext(path)[1].lower()
    if ext not in kinds:
        raise ValueError(f"runlake.{what}: {path!r} is not one of the file types {', '.join(sorted(kinds))}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"runlake.{what}: no file at {path!r}")
    with open(path, "rb") as fh:
        return fh.read(), kinds[ext]


class _Encoded(Media):
    """Media whose bytes are made (or read) when constructed: `_data` in `format`."""

    _data: bytes = b""
    format: str = ""

    @property
    def suffix(self) -> str:  # type: ignore[override]
        return f".{self.format}"

    def encode(self) -> bytes:
        return self._data


class Audio(_Encoded):
    """`runlake.Audio(data_or_path, sample_rate=None, caption=None)`: a numpy array of samples
    (floats in [-1, 1] or int16; shape (n,) or (n, channels)), stored as 16-bit WAV, or an audio
    file (wav, mp3, flac, ogg, m4a) stored as it is."""

    kind = "audio"

    def __init__(self, data_or_path: Any, sample_rate: int | None = None, caption: str | None = None) -> None:
        self.caption = caption
        self.sample_rate = sample_rate
        if isinstance(data_or_path, (str, os.PathLike)):
            self._data, self.format = _read_file(os.fspath(data_or_path), _AUDIO_TYPES, "Audio")
            self.duration = None
            return
        if (
            sample_rate is None
            or isinstance(sample_rate, bool)
            or not isinstance(sample_rate, int)
            or sample_rate <= 0
        ):
            raise ValueError("runlake.Audio: sample_rate (a positive int) is required for raw audio data")
        samples = np.asarray(data_or_path)
        if samples.ndim not in (1, 2) or samples.size == 0:
            raise ValueError(
                f"runlake.Audio: samples must be (n,) or (n, channels), got shape {samples.shape}"
            )
        if samples.dtype.kind == "f":
            pcm = (np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767).astype("<i2")
        elif samples.dtype.kind in "iu":
            pcm = samples.astype("<i2")
        else:
            raise ValueError(f"runlake.Audio: samples must be numbers, got {samples.dtype}")
        channels = 1 if pcm.ndim == 1 else pcm.shape[1]
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(2)
            wav.setframerate(sample_rate)
            wav.writeframes(pcm.tobytes())
        self._data, self.format = out.getvalue(), "wav"
        self.duration = len(pcm) / sample_rate

    def describe(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": self.format}
        if self.sample_rate is not None:
            doc["sample_rate"] = self.sample_rate
        if self.duration is not None:
            doc["duration"] = self.duration
        if self.caption is not None:
            doc["caption"] = self.caption
        return doc


class Video(_Encoded):
    """`runlake.Video(data_or_path, caption=None, fps=None, format=None)`: a numpy array of
    frames (time, channels, height, width) as W&B takes it (or a batch of them, tiled side by
    side), stored as an animated GIF at `fps` (W&B's default 4); or a video file (gif, mp4,
    webm, ogg, mov) stored as it is. Encoding an array to mp4/webm needs ffmpeg, which runlake
    does not bundle: such a `format` is an error that says so."""

    kind = "video"

    def __init__(
        self, data_or_path: Any, caption: str | None = None, fps: int | None = None, format: str | None = None
    ) -> None:  # noqa: A002
        self.caption = caption
        self.fps = fps or 4
        if isinstance(data_or_path, (str, os.PathLike)):
            self._data, self.format = _read_file(os.fspath(data_or_path), _VIDEO_TYPES, "Video")
            self.frames = None
            return
        if format not in (None, "gif"):
            raise ValueError(
                f"runlake.Video: a numpy video is stored as a GIF; format={format!r} would need ffmpeg. "
                "Pass format='gif', or write the file yourself and log its path"
            )
        frames = np.asarray(data_or_path)
        if frames.ndim == 5:  # (batch, time, channels, height, width): tiled side by side
            frames = np.concatenate(list(frames), axis=-1)
        if frames.ndim != 4 or frames.shape[1] not in (1, 3, 4):
            raise ValueError(
                f"runlake.Video: frames must be (time, channels, height, width), got shape {frames.shape}"
            )
        if frames.dtype.kind == "f":
            frames = np.clip(np.nan_to_num(frames) * (255 if frames.max(initial=0) <= 1.0 else 1), 0, 255)
        frames = np.moveaxis(frames.astype(np.uint8), 1, -1)
        from PIL import Image as PILImage

        images = [PILImage.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
        out = io.BytesIO()
        images[0].save(
            out, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / self.fps), loop=0
        )
        self._data, self.format, self.frames = out.getvalue(), "gif", len(images)

    def describe(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": self.format, "fps": self.fps}
        if self.frames is not None:
            doc["frames"] = self.frames
        if self.caption is not None:
            doc["caption"] = self.caption
        return doc


class Html(Media):
    """`runlake.Html(data, inject=True, data_is_not_path=False)`: an HTML string, an open
    file, or the path of an .html file; stored as a file (shown sandboxed by the web app)."""

    kind = "html"
    suffix = ".html"

    def __init__(self, data: Any, inject: bool = True, data_is_not_path: bool = False) -> None:
        if hasattr(data, "read"):
            text = data.read()
        elif (
            isinstance(data, (str, os.PathLike))
            and not data_is_not_path
            and os.fspath(data).endswith((".html", ".htm"))
        ):
            path = os.fspath(data)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"runlake.Html: no file at {path!r}")
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        elif isinstance(data, str):
            text = data
        else:
            raise TypeError(f"runlake.Html takes an HTML string, a file or a path, got {type(data).__name__}")
        self.html = text if isinstance(text, str) else text.decode("utf-8")

    def encode(self) -> bytes:
        return self.html.encode("utf-8")

    def describe(self) -> dict[str, Any]:
        return {"format": "html"}


class Plotly(Media):
    """`runlake.Plotly(figure)`: a plotly figure, stored as its JSON (`fig.to_json()`); a
    matplotlib figure is stored as an Image of it instead (`Plotly.make_plot_media`)."""

    kind = "plotly"
    suffix = ".plotly.json"

    def __init__(self, val: Any) -> None:
        to_json = getattr(val, "to_json", None)
        if not callable(to_json) or not type(val).__module__.startswith("plotly"):
            raise TypeError(f"runlake.Plotly takes a plotly figure, got {type(val).__name__}")
        self._json = to_json()

    @classmethod
    def make_plot_media(cls, val: Any) -> Media:
        if matplotlib_figure(val) is not None:
            from .media import Image

            return Image(val)
        return cls(val)

    def encode(self) -> bytes:
        return self._json.encode("utf-8")

    def describe(self) -> dict[str, Any]:
        return {"format": "plotly"}
