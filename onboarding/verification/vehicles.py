"""What vehicle is in the driver's photo? YOLOX-nano (COCO, ONNX on onnxruntime, CPU).

Pre-processing as the model was exported: BGR, 0-255, letterboxed into 416x416 at the top
left with grey 114. Decoding: per anchor point ``cx = (tx + gx) * stride``,
``w = exp(tw) * stride`` (strides 8, 16, 32), score = objectness x class score, then
class-aware NMS (IoU 0.45) as YOLOX's demo does, so one box may be both "dog" and "cat".

Vehicle type (the values of ``fleet.Vehicle.Type``) from the most prominent vehicle, the
largest box among vehicle detections scoring at least ``MIN_VEHICLE_SCORE``:
* COCO bicycle -> ``bicycle``; motorcycle -> ``motorcycle`` (a scooter looks the same to COCO).
* COCO car -> ``car``, or ``van`` when the box is boxy (height / width >= 0.9: a minivan or a
  panel van seen from the front or rear; a car is lower than it is wide from any side).
* COCO truck -> ``truck`` when tall (height / width >= 0.75: a lorry's cab or box), else
  ``van`` (pickups and panel vans, which COCO also labels truck, are long and low).
* COCO bus -> ``truck`` (a large vehicle; nobody delivers by bus, so it goes to review).
Geometry cannot see depth, so this is a first guess for the form; the driver confirms it and
a reviewer sees the photo. Default capacities per type are the fleet's
(``fleet.models.VEHICLE_DEFAULT_CAPACITY``), handed in by the caller: this module keeps no
copy of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
from PIL import Image

from onboarding.verification.images import ImageSource, load_rgb

MODEL_PATH = Path(__file__).resolve().parent / "data" / "yolox_nano.onnx"
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
SCORE_THRESHOLD = 0.30
NMS_IOU = 0.45
MIN_VEHICLE_SCORE = 0.5

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
VEHICLE_CLASSES = frozenset({"bicycle", "car", "motorcycle", "bus", "truck"})


@dataclass(frozen=True)
class Detection:
    """One detected object, its box in pixels of the original image."""

    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2


@dataclass(frozen=True)
class VehicleResult:
    vehicle_type: str | None
    confidence: float
    detections: list[Detection]
    capacity: dict | None  # {"kg", "litres"} of the type, when the caller gave capacities
    reason: str

    def as_dict(self) -> dict:
        """The JSON contract of ``detect_vehicle``."""
        return {
            "vehicle_type": self.vehicle_type,
            "confidence": round(self.confidence, 3),
            "detections": [
                {"class": d.label, "score": round(d.score, 3), "box": [round(v, 1) for v in d.box]}
                for d in self.detections
            ],
            "capacity": self.capacity,
        }


@cache
def _session() -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    return onnxruntime.InferenceSession(str(MODEL_PATH), options, providers=["CPUExecutionProvider"])


@cache
def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Anchor points (gx, gy) and their stride, in the model's output order."""
    points, strides = [], []
    for stride in STRIDES:
        side = INPUT_SIZE // stride
        gy, gx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        points.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        strides.append(np.full((side * side, 1), stride))
    return np.concatenate(points).astype(np.float32), np.concatenate(strides).astype(np.float32)


def letterbox(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The model's input tensor (BGR) and the scale ``r`` from original to input pixels.
    Pillow's bilinear resize: the expected detections were made with it (OpenCV's differs by
    a few hundredths in score)."""
    height, width = rgb.shape[:2]
    r = min(INPUT_SIZE / height, INPUT_SIZE / width)
    size = (max(1, int(width * r)), max(1, int(height * r)))
    resized = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    padded = np.full((INPUT_SIZE, INPUT_SIZE, 3), 114, dtype=np.uint8)
    padded[: resized.shape[0], : resized.shape[1]] = resized[..., ::-1]
    return padded.transpose(2, 0, 1)[None].astype(np.float32), r


def detect_objects(source: ImageSource, *, score_threshold: float = SCORE_THRESHOLD) -> list[Detection]:
    """Every COCO object scoring at least ``score_threshold``, best first."""
    rgb = load_rgb(source)
    tensor, r = letterbox(rgb)
    output = _session().run(None, {_session().get_inputs()[0].name: tensor})[0][0]
    points, strides = _grid()
    centres = (output[:, :2] + points) * strides
    sizes = np.exp(output[:, 2:4]) * strides
    corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) / r
    scores = output[:, 4:5] * output[:, 5:]
    anchors, classes = np.nonzero(scores >= score_threshold)
    if not len(anchors):
        return []
    boxes = corners[anchors]
    kept = cv2.dnn.NMSBoxesBatched(
        [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in boxes],
        scores[anchors, classes].astype(float).tolist(),
        classes.tolist(),
        score_threshold,
        NMS_IOU,
    )
    detections = [
        Detection(COCO_CLASSES[classes[i]], float(scores[anchors[i], classes[i]]), _clip(boxes[i], rgb.shape))
        for i in np.asarray(kept).ravel()
    ]
    return sorted(detections, key=lambda d: d.score, reverse=True)


def _clip(box: np.ndarray, shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    height, width = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)


def vehicle_type_of(detection: Detection) -> str:
    """The fleet vehicle type for one vehicle detection (rules in the module docstring)."""
    x1, y1, x2, y2 = detection.box
    boxiness = (y2 - y1) / max(x2 - x1, 1e-6)
    if detection.label in ("bicycle", "motorcycle"):
        return detection.label
    if detection.label == "car":
        return "van" if boxiness >= 0.9 else "car"
    if detection.label == "truck":
        return "truck" if boxiness >= 0.75 else "van"
    return "truck"  # bus


def detect_vehicle(source: ImageSource, *, capacities: Mapping[str, dict] | None = None) -> VehicleResult:
    """Detections, the main vehicle's type and its default capacity (from ``capacities``,
    type -> {"kg", "litres"}). Raises ``UnreadableImage``."""
    detections = detect_objects(source)
    vehicles = [d for d in detections if d.label in VEHICLE_CLASSES and d.score >= MIN_VEHICLE_SCORE]
    if not vehicles:
        return VehicleResult(None, 0.0, detections, None, "no vehicle in the photo")
    main = max(vehicles, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
    kind = vehicle_type_of(main)
    return VehicleResult(
        kind,
        main.score,
        detections,
        dict(capacities[kind]) if capacities and kind in capacities else None,
        f"{main.label} ({main.score:.2f}) taken as a {kind}",
    )
