"""``VideoImgStore``: one video file per chunk, ``NNNNNN<extension>``, with its index beside it."""

from __future__ import annotations

from typing import Any

from .. import codecs
from ..errors import ImgStoreError
from .base import _ImgStore
from .layout import VideoLayout
from .location import StoreLocation
from .opening import StoreKind

#: arguments upstream's video stores accepted; frame-exact seeking makes them unnecessary
_IGNORED_ARGUMENTS = ("seek", "gpu_id", "videosize")
#: what the base store takes
_STORE_ARGUMENTS = {
    "basedir",
    "mode",
    "imgshape",
    "imgdtype",
    "chunksize",
    "metadata",
    "encoding",
    "write_encode_encoding",
    "format",
    "index",
    "storage_options",
}


class VideoImgStore(_ImgStore):
    """A store whose chunks are video files (also reads Motif's ``VideoImgStoreFFMPEG`` stores).

    ``backend`` picks the library that encodes and decodes chunks: ``'av'`` (PyAV, the default)
    or ``'opencv'`` (as upstream). Encoder settings (``crf``, ``preset``, ``gop``, ``bframes``,
    ``quality``, ``pix_fmt``, ``threads``) apply when writing, where the format has them.
    """

    _readable_classes = ("VideoImgStore", "VideoImgStoreFFMPEG")
    #: upstream's class attribute, kept for scripts that read it (the format's codec decides)
    _DEFAULT_CHUNKSIZE = 10000

    def __init__(self, backend: str = codecs.DEFAULT_BACKEND, **kwargs: Any) -> None:
        for name in _IGNORED_ARGUMENTS:
            kwargs.pop(name, None)
        self._backend = codecs.check_backend(backend)
        settings = {name: kwargs.pop(name, None) for name in codecs.ENCODER_SETTING_NAMES}
        unknown = sorted(set(kwargs) - _STORE_ARGUMENTS)
        if unknown:
            raise TypeError(
                f"VideoImgStore got unexpected argument(s) {', '.join(unknown)} "
                f"(encoder settings are {', '.join(codecs.ENCODER_SETTING_NAMES)})"
            )
        super().__init__(writer_options=settings, **kwargs)

    @classmethod
    def _codec_for(cls, fmt: object, backend: str = codecs.DEFAULT_BACKEND) -> codecs.ChunkCodec:
        return codecs.get_codec(fmt, store_class=cls.__name__, backend=backend)

    def _writer_codec(self, fmt: object) -> codecs.ChunkCodec:
        return self._codec_for(fmt, self._backend)

    def _reader_codec(self, fmt: object) -> codecs.ChunkCodec:
        return codecs.get_reader_codec(fmt, type(self).__name__, backend=self._backend)

    @classmethod
    def _layout(cls, location: StoreLocation, extension: Any) -> VideoLayout:
        return VideoLayout(location, extension)

    def _kind(self) -> StoreKind:
        return StoreKind(
            type(self).__name__,
            self._readable_classes,
            lambda location, smd: VideoLayout(location, codecs.chunk_file_extension(smd.format, smd.extension)),
            self._reader_codec,
            backend=self._backend,
            frame_shape=lambda smd: codecs.shape_as_written(smd.class_name, smd.format, smd.imgshape),
        )

    @property
    def _extension(self) -> str:
        """The chunk files' extension: from metadata, else Motif's defaults (.avi for mjpeg, .mp4)."""
        return self._side.layout.extension

    def insert_chunk(self, video_path: str, frame_numbers: Any, frame_times: Any, move: bool = True) -> None:
        """Add an already-encoded video file as the next chunk, with its frames' numbers and times."""
        writer = self._write_side("insert a chunk")
        if not str(video_path).endswith(self._extension):
            raise ImgStoreError(f"insert_chunk: {video_path} must be a {self._extension} file for this store")
        try:
            writer.insert_chunk(video_path, frame_numbers, frame_times, move)
        finally:
            self._wrote(writer)
