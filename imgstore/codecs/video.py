"""What a video chunk format is, independent of the library that encodes it.

A ``VideoFormat`` names the encoder, container and extension of a format, which pixel formats
it stores grey and colour frames in, and which encoder settings users may change. The PyAV and
OpenCV backends both implement the same formats from these descriptions.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import UnsupportedFormatError
from .base import ChunkCodec

#: frames per second written into every chunk's time base (times live in the frame index)
NOMINAL_FPS = 25


def even_shape(imgshape: Tuple[int, ...]) -> Tuple[int, ...]:
    """Height and width truncated to even numbers, as video chunks are written (upstream too)."""
    return (int(imgshape[0]) & -2, int(imgshape[1]) & -2, *imgshape[2:])


def dropped_edges(asked: Tuple[int, ...], stored: Tuple[int, ...]) -> str:
    """The rows and columns a store drops from frames of shape ``asked`` to store ``stored``, in words.

    ``(241, 321)`` -> ``(240, 320)``: ``'row 240 (the last) and column 320 (the last)'``.
    """
    parts = []
    for axis, name in ((0, "row"), (1, "column")):
        kept, size = int(stored[axis]), int(asked[axis])
        if kept < size:
            lost = list(range(kept, size))
            where = f"{name} {lost[0]}" if len(lost) == 1 else f"{name}s {lost[0]}..{lost[-1]}"
            parts.append(f"{where} (the last)" if len(lost) == 1 else f"{where} (the last {len(lost)})")
    return " and ".join(parts)


log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VideoFormat:
    """One video chunk format (e.g. ``avc1/mp4``) as the store names it."""

    name: str
    #: FFmpeg encoder name
    encoder: str
    #: FFmpeg muxer name
    container: str
    extension: str
    lossless: bool
    #: pixel format stored for each kind of frame: 'grey', 'grey16', 'color', 'color16'
    pix_fmts: Mapping[str, str]
    #: pixel formats a user may ask for instead of the defaults
    allowed_pix_fmts: Tuple[str, ...] = ()
    #: default encoder settings (see ``ENCODER_SETTINGS``)
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: the settings this format understands
    settings: Tuple[str, ...] = ("gop", "threads", "pix_fmt")
    #: OpenCV ``VideoWriter`` four-character code (None: no OpenCV equivalent)
    fourcc: Optional[str] = None
    #: smallest (height, width) the encoder handles: smaller frames are padded to it for the
    #: encoder and cropped back when read (libx265 corrupts memory below one 64-pixel-wide CTU
    #: and refuses fewer than 16 rows; SVT-AV1 refuses fewer than 4 pixels and never returns
    #: from flushing frames under about 30 pixels in one dimension and over 64 in the other)
    min_size: Tuple[int, int] = (2, 2)
    #: whether frames are stored at even height and width only (the last row or column of odd
    #: sizes dropped, as upstream does): chroma subsampling (4:2:0) needs even sizes, and
    #: upstream crops every format it writes; FFV1 stores any size, so it keeps the whole frame
    even_size: bool = True

    def written_shape(self, imgshape: Tuple[int, ...]) -> Tuple[int, ...]:
        """The shape frames of ``imgshape`` are stored at: even height and width where the format needs it."""
        return even_shape(imgshape) if self.even_size else tuple(int(n) for n in imgshape)

    def coded_size(self, imgshape: Tuple[int, ...]) -> Tuple[int, int]:
        """``(height, width)`` of the encoded picture for frames of ``imgshape``: at least ``min_size``."""
        return max(int(imgshape[0]), self.min_size[0]), max(int(imgshape[1]), self.min_size[1])

    @property
    def dtypes(self) -> Tuple[str, ...]:
        return ("uint8", "uint16") if {"grey16", "color16"} & set(self.pix_fmts) else ("uint8",)


#: what each encoder setting means, for error messages and docs
ENCODER_SETTINGS: Dict[str, str] = {
    "crf": "quality: constant rate factor, lower is better and larger (x264/x265: 0-51, AV1: 0-63)",
    "preset": "encoder speed/size trade-off, e.g. 'ultrafast', 'veryfast', 'medium' (AV1: 0-13)",
    "gop": "frames between keyframes: smaller means faster random access, larger means smaller files",
    "bframes": "B-frames between references (0: none, faster seeking, larger files)",
    "quality": "MJPEG quality scale 2 (best) .. 31 (smallest)",
    "pix_fmt": "stored pixel format, e.g. 'yuv420p', 'yuv444p', 'gray'",
    "threads": "encoder threads (0: automatic)",
}
#: the encoder settings a store takes when it is created (``VideoImgStore(crf=..., ...)``)
ENCODER_SETTING_NAMES: Tuple[str, ...] = tuple(ENCODER_SETTINGS)


def frame_kind(imgshape: Tuple[int, ...], imgdtype: str) -> str:
    """'grey', 'grey16', 'color' or 'color16': which of a format's pixel formats frames are stored in."""
    kind = "color" if len(imgshape) == 3 else "grey"
    return kind + "16" if imgdtype == "uint16" else kind


def resolve_settings(
    fmt: VideoFormat, imgshape: Tuple[int, ...], imgdtype: str, options: Optional[Mapping[str, Any]]
) -> Dict[str, Any]:
    """The format's defaults overlaid with the user's settings; unknown settings are refused."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(fmt.settings))
    if unknown:
        allowed = "; ".join(f"{k}: {ENCODER_SETTINGS[k]}" for k in fmt.settings)
        raise UnsupportedFormatError(f"format '{fmt.name}' has no setting {', '.join(unknown)} (settings: {allowed})")
    for name, value in options.items():
        _check_value(fmt, name, value)
    settings = dict(fmt.defaults)
    settings.update(options)
    kind = frame_kind(imgshape, imgdtype)
    if kind not in fmt.pix_fmts:
        raise UnsupportedFormatError(f"format '{fmt.name}' cannot store {kind} frames")
    pix_fmt = settings.get("pix_fmt") or fmt.pix_fmts[kind]
    grey_for_colour = kind.startswith("color") and pix_fmt.startswith("gray")
    if grey_for_colour or (pix_fmt != fmt.pix_fmts[kind] and pix_fmt not in fmt.allowed_pix_fmts):
        raise UnsupportedFormatError(
            f"format '{fmt.name}' cannot store {kind} frames as pix_fmt {pix_fmt!r} "
            f"(choose from {', '.join(dict.fromkeys((fmt.pix_fmts[kind], *fmt.allowed_pix_fmts)))})"
        )
    settings["pix_fmt"] = pix_fmt
    return settings


_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def _whole(value: Any, low: int, high: Optional[int] = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high)


def _check_value(fmt: VideoFormat, name: str, value: Any) -> None:
    """Refuse a setting value the encoder would reject only at the first frame."""
    if name == "crf":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 63
    elif name == "preset":
        ok = _whole(value, 0, 13) if fmt.encoder == "libsvtav1" else value in _X26X_PRESETS
    elif name == "gop":
        ok = _whole(value, 1)
    elif name == "bframes":
        ok = _whole(value, 0, 16)
    elif name == "quality":
        ok = _whole(value, 2, 31)
    elif name == "threads":
        ok = _whole(value, 0)
    else:  # pix_fmt: checked against the format's list by the caller
        ok = isinstance(value, str)
    if not ok:
        hint = f" ({', '.join(_X26X_PRESETS)})" if name == "preset" and fmt.encoder != "libsvtav1" else ""
        raise UnsupportedFormatError(f"format '{fmt.name}': invalid {name}={value!r}: {ENCODER_SETTINGS[name]}{hint}")


_H264 = dict(
    encoder="libx264",
    lossless=False,
    pix_fmts={"grey": "gray", "color": "yuv420p"},
    allowed_pix_fmts=("yuv420p", "yuv444p", "gray"),
    defaults={"crf": 20, "preset": "veryfast", "gop": 50, "threads": 0},
    settings=("crf", "preset", "gop", "bframes", "pix_fmt", "threads"),
)

MJPEG_AVI = VideoFormat(
    name="mjpeg/avi",
    encoder="mjpeg",
    container="avi",
    extension=".avi",
    lossless=False,
    pix_fmts={"grey": "gray", "color": "yuvj420p"},
    allowed_pix_fmts=("yuvj420p", "yuvj444p", "gray"),
    defaults={"quality": 3, "threads": 0},
    settings=("quality", "pix_fmt", "threads"),
    fourcc="MJPG",
)
AVC1_MP4 = VideoFormat(name="avc1/mp4", container="mp4", extension=".mp4", fourcc="avc1", **_H264)
H264_MKV = VideoFormat(name="h264/mkv", container="matroska", extension=".mkv", fourcc="H264", **_H264)
FFV1_MKV = VideoFormat(
    name="ffv1/mkv",
    encoder="ffv1",
    container="matroska",
    extension=".mkv",
    lossless=True,
    pix_fmts={"grey": "gray", "grey16": "gray16le", "color": "bgr0", "color16": "gbrp16le"},
    defaults={"gop": 1, "threads": 0},
    settings=("gop", "threads"),
    even_size=False,
)
HEVC_MP4 = VideoFormat(
    name="hevc/mp4",
    encoder="libx265",
    container="mp4",
    extension=".mp4",
    lossless=False,
    pix_fmts={"grey": "gray", "color": "yuv420p"},
    allowed_pix_fmts=("yuv420p", "yuv444p", "gray"),
    defaults={"crf": 24, "preset": "veryfast", "gop": 50, "threads": 0},
    settings=("crf", "preset", "gop", "bframes", "pix_fmt", "threads"),
    min_size=(16, 64),
)
AV1_MKV = VideoFormat(
    name="av1/mkv",
    encoder="libsvtav1",
    container="matroska",
    extension=".mkv",
    lossless=False,
    pix_fmts={"grey": "yuv420p", "color": "yuv420p"},
    defaults={"crf": 30, "preset": 10, "gop": 50, "threads": 0},
    settings=("crf", "preset", "gop", "threads"),
    min_size=(32, 32),
)

#: a format read from stores written by other programs (Motif's 'libx264', NVENC names...):
#: whatever FFmpeg can decode, never written
ANY_READABLE = VideoFormat(
    name="(any video FFmpeg decodes)",
    encoder="",
    container="",
    extension=".mp4",
    lossless=False,
    pix_fmts={"grey": "gray", "grey16": "gray16le", "color": "bgr24", "color16": "bgr48le"},
)


class VideoCodec(ChunkCodec):
    """What the video backends share: a ``VideoFormat``, one file per chunk, even sizes where the format needs them."""

    store_class = "VideoImgStore"
    default_chunksize = 10000
    channels = (3,)

    def __init__(self, fmt: VideoFormat, writable: bool = True) -> None:
        self.format = fmt
        self.name = fmt.name
        self.extension = fmt.extension
        self.lossless = fmt.lossless
        self.dtypes = fmt.dtypes
        self._writable = writable
        self._probed: Optional[bool] = None

    def available(self) -> bool:
        """Whether this install really writes the format: probed once, on first asking."""
        if self._probed is None:
            self._probed = self._writable and self._probe()
        return self._probed

    def _probe(self) -> bool:
        """Write a few small frames with this backend; False (logged at debug level) if that fails."""
        raise NotImplementedError

    def written_shape(self, imgshape: Tuple[int, ...]) -> Tuple[int, ...]:
        return self.format.written_shape(imgshape)


#: the formats this library writes, by name
WRITTEN_FORMATS: Dict[str, VideoFormat] = {
    f.name: f for f in (MJPEG_AVI, AVC1_MP4, H264_MKV, FFV1_MKV, HEVC_MP4, AV1_MKV)
}


def stored_shape(format_name: str, imgshape: Tuple[int, ...]) -> Tuple[int, ...]:
    """The shape a store of ``format_name`` keeps frames of ``imgshape`` at (formats of other programs: even)."""
    fmt = WRITTEN_FORMATS.get(format_name)
    return fmt.written_shape(imgshape) if fmt is not None else even_shape(imgshape)
