"""Speech models that ship inside packages: Whisper tiny.en (CTranslate2, through faster-whisper) and the
Piper voice en_US-joe-medium (piper-tts, GPL-3.0: an optional extra, see pyproject's `voice`)."""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path
from typing import Any

from stratus.capabilities.perception import spec
from stratus_worker.inference.errors import InvalidInput, ModelUnavailable

Item = dict[str, Any]
SAMPLE_RATE = 16_000  # what Whisper decodes to


class Transcriber:
    def __init__(self, directory: Path) -> None:
        from faster_whisper import WhisperModel

        # CPU unless asked: tiny.en runs several times faster than real time on one core, and CUDA in
        # CTranslate2 needs cuBLAS/cuDNN libraries the image may lack (it would fail at the first
        # transcription, not here). STRATUS_WHISPER_DEVICE=cuda (or auto) where they are installed.
        device = os.environ.get("STRATUS_WHISPER_DEVICE", "cpu")
        self.model = WhisperModel(str(directory), device=device, compute_type="int8")

    def run(self, task: str, item: Item, options: Item) -> Item:
        from faster_whisper.audio import decode_audio

        try:
            samples = decode_audio(io.BytesIO(item["audio"]), sampling_rate=SAMPLE_RATE)
        except Exception as e:  # PyAV raises many types for undecodable input
            raise InvalidInput(
                "audio: not a decodable audio file (send WAV, MP3, FLAC, OGG, M4A or WebM)"
            ) from e
        duration = len(samples) / SAMPLE_RATE
        if duration == 0:
            raise InvalidInput("audio: the file holds no sound")
        if duration > spec.MAX_AUDIO_SECONDS:
            raise InvalidInput(f"audio: {duration:.0f} s is longer than {spec.MAX_AUDIO_SECONDS:.0f} s")
        segments, info = self.model.transcribe(
            samples,
            language=options["language"] or "en",
            vad_filter=options["vad_filter"],
            initial_prompt=options["prompt"],
            temperature=options["temperature"],
            beam_size=5,
        )
        out = [
            {"id": i, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip(),
             "avg_logprob": round(s.avg_logprob, 4), "no_speech_prob": round(s.no_speech_prob, 4),
             "compression_ratio": round(s.compression_ratio, 4), "temperature": s.temperature}
            for i, s in enumerate(segments)
        ]  # fmt: skip
        return {
            "text": " ".join(s["text"] for s in out).strip(),
            "language": info.language,
            "duration": round(duration, 3),
            "segments": out,
        }


class Voice:
    def __init__(self, model: Path) -> None:
        from piper import PiperVoice, SynthesisConfig

        self.voice = PiperVoice.load(str(model))
        self.config = SynthesisConfig

    def run(self, task: str, item: Item, options: Item) -> Item:
        import base64

        # Piper's length_scale is the inverse of speed: 2.0 speaks twice as slowly.
        config = self.config(length_scale=1.0 / options["speed"])
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            self.voice.synthesize_wav(item["text"], writer, syn_config=config)
        wav = buffer.getvalue()
        with wave.open(io.BytesIO(wav)) as reader:
            rate, frames = reader.getframerate(), reader.getnframes()
        data, content_type = (wav, "audio/wav") if options["format"] == "wav" else (_mp3(wav), "audio/mpeg")
        return {
            "audio": base64.b64encode(data).decode(),
            "format": options["format"],
            "content_type": content_type,
            "duration": round(frames / rate, 3),
            "sample_rate": rate,
        }


def _mp3(wav: bytes) -> bytes:
    """WAV -> MP3 with PyAV's bundled encoder (a faster-whisper dependency)."""
    import av

    out = io.BytesIO()
    with av.open(io.BytesIO(wav), "r") as source, av.open(out, "w", format="mp3") as sink:
        stream = sink.add_stream("libmp3lame", rate=source.streams.audio[0].rate)
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                sink.mux(packet)
        for packet in stream.encode(None):
            sink.mux(packet)
    return out.getvalue()


def load(loader: str, path: Path) -> Any:
    if loader == "faster-whisper":
        return Transcriber(path)
    try:
        return Voice(path)
    except ImportError as e:
        raise ModelUnavailable(
            "Speech synthesis needs piper-tts (GPL-3.0, optional): pip install 'stratus[voice]'"
        ) from e
