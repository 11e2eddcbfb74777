"""Export a Hugging Face CLIP checkpoint to ONNX in the layout transformers.js loads.

    .venv-parity/bin/pip install -r tests/bench/requirements.txt
    .venv-parity/bin/python tests/bench/export_onnx.py tests/fixtures/full/b32 tests/fixtures/full/b32-onnx

`cliplens bench browser` times CLIP Lens and transformers.js on the same weights: the
random full-size checkpoint of `tests/parity/make_fixtures.py full`, loaded by CLIP Lens
from its safetensors and by transformers.js from these files:

    OUT/config.json, preprocessor_config.json, tokenizer.json, tokenizer_config.json,
        special_tokens_map.json (copied from the checkpoint, or from the shared real
        CLIP ViT-B/32 folder where the checkpoint has none)
    OUT/onnx/vision_model.onnx   CLIPVisionModelWithProjection: pixel_values -> image_embeds
    OUT/onnx/text_model.onnx     CLIPTextModelWithProjection: input_ids -> text_embeds

These are the files and the input/output names of the Xenova/clip-vit-base-patch32 exports
that transformers.js' CLIP demos use (fp32: `dtype: 'fp32'`). Batch and sequence axes are
dynamic. The exporter is torch's TorchScript-based one (`dynamo=False`), as optimum uses;
opset 17. A check at the end runs both graphs with onnxruntime, when it is installed, and
compares them with PyTorch at
other batch and sequence sizes than the export's.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
from transformers import CLIPTextModelWithProjection, CLIPVisionModelWithProjection

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "clip-vit-base-patch32"
COPIED = ["config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


class Vision(torch.nn.Module):
    def __init__(self, model: CLIPVisionModelWithProjection):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).image_embeds


class Text(torch.nn.Module):
    def __init__(self, model: CLIPTextModelWithProjection):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids).text_embeds


def export(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str, axes: dict) -> None:
    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: axes, output_name: {0: "batch_size"}},
        opset_version=17,
        do_constant_folding=True,
        dynamo=False,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    out: Path = args.out
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = args.checkpoint / name if (args.checkpoint / name).exists() else SHARED / name
        if not source.exists():
            print(f"{name}: in neither {args.checkpoint} nor {SHARED}", file=sys.stderr)
            return 1
        shutil.copyfile(source, out / name)

    torch.manual_seed(0)
    vision = CLIPVisionModelWithProjection.from_pretrained(args.checkpoint, attn_implementation="eager").eval()
    text = CLIPTextModelWithProjection.from_pretrained(args.checkpoint, attn_implementation="eager").eval()
    size = vision.config.image_size
    pixels = torch.randn(2, 3, size, size)
    # The end-of-text id is the largest in CLIP's vocabulary: pooling takes its position.
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 269, 49407], [49406, 320, 1929, 269, 49407, 49407, 49407, 49407]])
    with torch.no_grad():
        export(Vision(vision), pixels, out / "onnx" / "vision_model.onnx", "pixel_values", "image_embeds", {0: "batch_size"})
        export(Text(text), ids, out / "onnx" / "text_model.onnx", "input_ids", "text_embeds", {0: "batch_size", 1: "sequence_length"})
        # Checked at other shapes than the export's: the batch and sequence axes must be dynamic.
        pixels = torch.randn(3, 3, size, size)
        ids = torch.randint(1, 49000, (3, 13))
        ids[:, 0], ids[:, -1] = 49406, 49407
        want_image = vision(pixel_values=pixels).image_embeds.numpy()
        want_text = text(input_ids=ids).text_embeds.numpy()
    for f in sorted((out / "onnx").iterdir()):
        print(f"{f}: {f.stat().st_size / 1e6:.1f} MB")
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: the graphs were not checked against PyTorch")
        return 0
    got_image = ort.InferenceSession(str(out / "onnx" / "vision_model.onnx")).run(None, {"pixel_values": pixels.numpy()})[0]
    got_text = ort.InferenceSession(str(out / "onnx" / "text_model.onnx")).run(None, {"input_ids": ids.numpy()})[0]
    errors = (abs(got_image - want_image).max(), abs(got_text - want_text).max())
    print(f"onnxruntime against PyTorch: image embeds max |diff| {errors[0]:.2e}, text embeds {errors[1]:.2e}")
    return 0 if max(errors) < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
