"""Client-side pre/post-processing of the exported TFLite deblurrer, read from
its JSON contract: the reference that the web page and the Android app follow.

`python -m export` writes `tflite/<model>.json` beside each model (see
`keras_udd/export/contract.py`): input/output names and tensor indices,
dtype, NHWC layout, RGB order, value range and the smallest accepted size.
A client maps

    uint8 RGB [H, W, 3] -> value / 255 * (high - low) + low  (input range)
      -> model [1, H, W, 3] (tiled with keras_udd.tiling when large)
      -> clip to the output range -> (value - low) / (high - low) * 255,
         rounded to the nearest level -> uint8 RGB [H, W, 3].

Images smaller than the contract's minimum are edge-padded first and
cropped back; images larger than `TILE_SIZE` are deblurred in tiles that
overlap by `TILE_OVERLAP` pixels, aligned to `ALIGN`: the rules and defaults
of `keras_udd.deblur.deblur_image`, which `mobile_demo/web/js/` and the
Android `Deblurrer` reimplement (tests/test_web_demo.py checks the page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TILE_SIZE = 512  # keras_udd.deblur.deblur_image's default tile_size.
TILE_OVERLAP = 64  # ...and overlap.
ALIGN = 4  # keras_udd.deblur.STRIDE: the model's total downsampling.


@dataclass(frozen=True)
class TensorSpec:
    """One image tensor of the contract."""

    name: str
    index: int
    dtype: str
    shape: tuple
    layout: str
    color: str
    low: float
    high: float

    @classmethod
    def from_entry(cls, entry: dict) -> TensorSpec:
        spec = cls(
            name=entry["name"],
            index=int(entry["index"]),
            dtype=entry["dtype"],
            shape=tuple(entry["shape"]),
            layout=entry["layout"],
            color=entry["color"],
            low=float(entry["range"][0]),
            high=float(entry["range"][1]),
        )
        if spec.layout != "NHWC" or spec.color != "RGB" or spec.dtype != "float32":
            raise ValueError(
                f"tensor {spec.name}: {spec.dtype} {spec.layout} {spec.color}; "
                "this client handles float32 NHWC RGB"
            )
        if not spec.high > spec.low:
            raise ValueError(f"tensor {spec.name}: empty range")
        return spec


@dataclass(frozen=True)
class Contract:
    """A TFLite model's contract (`Contract.load(path to its .json)`)."""

    path: Path
    model_path: Path
    signature_key: str
    input: TensorSpec
    output: TensorSpec
    min_height: int
    min_width: int
    document: dict

    @classmethod
    def load(cls, path) -> Contract:
        path = Path(path)
        document = json.loads(path.read_text())
        if document.get("artifact") != "tflite":
            raise ValueError(f"{path} is not the contract of a TFLite model")
        (inputs,), (outputs,) = document["inputs"], document["outputs"]
        return cls(
            path=path,
            model_path=path.parent / document["file"],
            signature_key=document["signature_key"],
            input=TensorSpec.from_entry(inputs),
            output=TensorSpec.from_entry(outputs),
            min_height=int(document["sizes"]["min_height"]),
            min_width=int(document["sizes"]["min_width"]),
            document=document,
        )

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """uint8 RGB [H, W, 3] -> float32 [H, W, 3] in the input range."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(
                f"expected uint8 [H, W, 3], got {image.dtype} {image.shape}"
            )
        scale = np.float32((self.input.high - self.input.low) / 255.0)
        return image.astype(np.float32) * scale + np.float32(self.input.low)

    def postprocess(self, values: np.ndarray) -> np.ndarray:
        """float [H, W, 3] in the output range -> uint8 RGB, clipped and
        rounded to the nearest level."""
        low, high = self.output.low, self.output.high
        values = np.clip(np.asarray(values, np.float32), low, high)
        return np.round((values - low) * np.float32(255.0 / (high - low))).astype(
            np.uint8
        )


class LiteRTDeblurrer:
    """The TFLite model under `ai_edge_litert`'s interpreter, as its contract
    says: `resize_tensor_input` per image (or tile) size, XNNPACK threads."""

    def __init__(self, contract_path, num_threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        self.contract = Contract.load(contract_path)
        self.interpreter = Interpreter(
            model_path=str(self.contract.model_path), num_threads=num_threads
        )
        signature = self.interpreter.get_signature_runner(self.contract.signature_key)
        inputs = signature.get_input_details()
        outputs = signature.get_output_details()
        for side, spec, details in (
            ("input", self.contract.input, inputs),
            ("output", self.contract.output, outputs),
        ):
            if details.get(spec.name, {}).get("index") != spec.index:
                raise ValueError(
                    f"the contract's {side} {spec.name} (tensor {spec.index}) is not "
                    f"in the model's signature: {sorted(details)}"
                )
        self._shape = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 [1, H, W, 3] in the input range -> [1, H, W, 3] output."""
        batch = np.asarray(batch, np.float32)
        if batch.shape != self._shape:
            self.interpreter.resize_tensor_input(self.contract.input.index, batch.shape)
            self.interpreter.allocate_tensors()
            self._shape = batch.shape
        self.interpreter.set_tensor(self.contract.input.index, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.contract.output.index).copy()

    def deblur_values(
        self, values, tile_size: int = TILE_SIZE, overlap: int = TILE_OVERLAP
    ) -> np.ndarray:
        """float32 [H, W, 3] in the input range -> output range, any size."""
        from keras_udd import tiling

        height, width = values.shape[:2]
        pad_h = max(self.contract.min_height - height, 0)
        pad_w = max(self.contract.min_width - width, 0)
        if pad_h or pad_w:
            values = np.pad(values, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        out = tiling.process_tiled(
            values, self._run_batch, tile_size, overlap, batch_size=1, align=ALIGN
        )
        return out[:height, :width]

    def _run_batch(self, batch):
        return np.concatenate([self.run(image[None]) for image in batch])

    def deblur(
        self, image, tile_size: int = TILE_SIZE, overlap: int = TILE_OVERLAP
    ) -> np.ndarray:
        """uint8 RGB [H, W, 3] -> deblurred uint8 RGB [H, W, 3]."""
        values = self.contract.preprocess(image)
        return self.contract.postprocess(self.deblur_values(values, tile_size, overlap))
