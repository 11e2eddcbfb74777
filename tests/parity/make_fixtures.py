#!/usr/bin/env python3
"""Generate the parity fixtures that the Rust tests compare against Hugging Face `transformers`.

Setup (CPU only; nothing is downloaded from the Hugging Face Hub):

    python3 -m venv .venv-parity
    .venv-parity/bin/pip install -r tests/parity/requirements.txt

Usage (from the repository root):

    .venv-parity/bin/python tests/parity/make_fixtures.py [tiny]
    .venv-parity/bin/python tests/parity/make_fixtures.py full --arch b32 --out tests/fixtures/full/b32

The real openai/clip-vit-base-patch32 tokenizer and config files are read from
`../shared/data/clip-vit-base-patch32/` next to the repository (override with `--shared DIR`).
They are never copied into committed fixtures.

`tiny` (default) writes, all committed:
  tests/fixtures/tiny/                  a tiny random CLIPModel:
      config.json                         CLIPModel config (text: gelu, eps 1e-5; vision: quick_gelu, eps 1e-6)
      tokenizer.json                      our own ~1000-token CLIP-style BPE (specials are the last two ids),
      vocab.json, merges.txt              the same BPE in the vocab/merges layout,
      tokenizer_config.json, special_tokens_map.json
      model.safetensors                   f32 weights, HF CLIPModel key names
      model-f16.safetensors               the same weights rounded to f16
      model-bf16.safetensors              the same weights rounded to bf16
      reference.safetensors               inputs + outputs of the f32 model (computed in f32)
      reference-f16.safetensors           same inputs, outputs of the f16-rounded weights (computed in f32)
      reference-bf16.safetensors          same inputs, outputs of the bf16-rounded weights (computed in f32)
      gradients.safetensors               loss and gradients of the contrastive loss on the first 3 pairs
                                          (`gradients` mode: reads the files above, writes only this)
  tests/fixtures/images/                procedurally generated images in many formats,
      reference_pixels.safetensors        uint8 [3,224,224] per file: HF resize + center crop, no rescale/normalize
      README.md                           what each image is
  tests/fixtures/tokenizer_parity.json  token ids of the real CLIP tokenizer for >220 prompts

`full` writes a randomly initialised full-size CLIPModel (B/32 from the shared config, or B/16 = same
with patch_size 16) with `config.json`, `model.safetensors`, a copy of the shared `tokenizer.json` and
`reference.json` (normalised embeddings + cosine similarities for every fixture image and a fixed list
of prompts). Its output folder, tests/fixtures/full/, is gitignored (the weights are ~600 MB).

Everything is seeded; re-running with the pinned versions gives byte-identical tensors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from safetensors.numpy import save_file as save_numpy  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers  # noqa: E402
from transformers import CLIPConfig, CLIPModel  # noqa: E402
from transformers.image_utils import load_image  # noqa: E402

try:  # transformers 4.x
    from transformers import CLIPTokenizerFast
except ImportError:  # transformers 5.x: the tokenizers-backed class is CLIPTokenizer
    from transformers import CLIPTokenizer as CLIPTokenizerFast

try:  # transformers 5.x: the PIL (slow) processor has its own class
    from transformers import CLIPImageProcessorPil as SlowCLIPImageProcessor
except ImportError:  # transformers 4.x: CLIPImageProcessor is the PIL/numpy one
    from transformers import CLIPImageProcessor as SlowCLIPImageProcessor

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_SHARED = REPO.parent / "shared" / "data" / "clip-vit-base-patch32"

SEED = 20240607
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# The pre-tokenizer regex of the real CLIP tokenizer.json.
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""

# ---------------------------------------------------------------------------------------------
# Prompts for the tokenizer parity fixture (also part of the tiny tokenizer's training corpus).
# ---------------------------------------------------------------------------------------------

PARITY_PROMPTS = [
    # ordinary captions
    "a photo of a cat",
    "a photo of a dog",
    "a photo of a bird sitting on a branch",
    "a red circle on a blue background",
    "a green triangle next to a yellow square",
    "an astronaut riding a horse on the moon, digital art",
    "a black and white photograph of an old bridge",
    "two children playing football in the park",
    "a bowl of fresh fruit on a wooden table",
    "a close-up of a sunflower",
    "an oil painting of a stormy sea",
    "the city skyline at night",
    "a dog wearing sunglasses at the beach",
    "a cup of coffee and a croissant",
    "a snowy mountain under a clear sky",
    "a man riding a bicycle down a busy street",
    "a woman reading a book in a library",
    "a pile of autumn leaves",
    "a blurry picture of a train",
    "an empty parking lot in the rain",
    "a diagram of the solar system",
    "a low-resolution screenshot of a video game",
    "a watercolor sketch of a lighthouse",
    "a herd of elephants crossing a river",
    "a plate of spaghetti with tomato sauce",
    "a vintage car parked outside a diner",
    "a cartoon drawing of a smiling sun",
    "a macro shot of a ladybug on a leaf",
    "an aerial view of farmland",
    "a group of people hiking in the forest",
    "a kitten sleeping in a cardboard box",
    "a pizza",
    "dog",
    "cat",
    "photo",
    "a",
    "the",
    "sunset over the ocean",
    "a photo of a cat.",
    "a photo of a dog!",
    "is this a cat?",
    "a bad photo of the cat",
    "a cropped photo of the dog",
    "a bright photo of a car",
    "a dark photo of the house",
    "a sculpture of a bird",
    "a rendering of a spaceship",
    "graffiti of a tiger",
    "a tattoo of a rose",
    "an embroidered flower",
    # punctuation
    "Hello, world!",
    "wait... what?!",
    "yes; no: maybe",
    "(parentheses) [brackets] {braces}",
    "quotes: \"double\" and 'single'",
    "dash - en dash – em dash —",
    "a/b\\c|d",
    "!!!???...",
    "~`!@#$%^&*()_+-=",
    "semi;colon,comma.period",
    "“curly quotes” and ‘single curly’",
    "«guillemets» and ‹single›",
    "ellipsis… character",
    "bullet • point",
    "under_score and hy-phen",
    "trailing punctuation!!!",
    "...leading dots",
    "a.b.c.d",
    "...",
    "?",
    # contractions
    "it's a cat",
    "don't look",
    "they're here",
    "I've seen it",
    "I'm happy",
    "we'll go",
    "he'd know",
    "IT'S LOUD",
    "DON'T STOP",
    "the dog's bone",
    "the dogs' bones",
    "rock ’n’ roll",
    "it’s a curly apostrophe",
    "o'clock",
    "can't won't shouldn't",
    "y'all'd've",
    "'s 't 're 've 'm 'll 'd",
    "'tis the season",
    "rock'n'roll",
    "James's hat",
    # unicode accents, scripts
    "café",
    "naïve façade résumé",
    "cafe\u0301 (combining accent)",
    "Ångström",
    "crème brûlée",
    "jalapeño piñata",
    "Straße",
    "STRASSE",
    "İstanbul",
    "ıi İI",
    "Ελληνικά γράμματα",
    "Привет, мир",
    "ФОТО КОШКИ",
    "Zażółć gęślą jaźń",
    "Tiếng Việt có dấu",
    "一只猫的照片",
    "猫の写真",
    "東京タワーの夜景",
    "고양이 사진",
    "한국어와 English 섞기",
    "صورة قطة",
    "مرحبا بالعالم",
    "שלום עולם",
    "बिल्ली की तस्वीर",
    "ภาพแมว",
    "ሰላም",
    "ＡＢＣ１２３ fullwidth",
    "ﬁne ligature",
    "Ⅻ roman numeral",
    "x² + y³ = z¹",
    "½ cup of sugar",
    "nbsp\u00a0between",
    "zero\u200bwidth\u200bspace",
    "soft\u00adhyphen",
    "bell\u0007char",
    "null\u0000char",
    "right-to-left \u202emark",
    # emoji
    "😀",
    "a cat 🐱",
    "🐶🐱🐭🐹",
    "thumbs up 👍🏽",
    "👍🏻👍🏼👍🏽👍🏾👍🏿",
    "family 👨‍👩‍👧‍👦",
    "👩🏽‍💻 coding",
    "🏳️‍🌈 flag",
    "🇯🇵 🇫🇷 🇺🇸",
    "1️⃣ keycap",
    "❤️ red heart",
    "♥ suit heart",
    "🔥🔥🔥 fire",
    "emoji🙂inside",
    # numbers
    "3.14",
    "3.14159265358979",
    "1,000,000",
    "2024-01-01",
    "12:30pm",
    "$19.99",
    "50% off",
    "1st 2nd 3rd 4th",
    "-42",
    "1e-5",
    "0x1F",
    "007",
    "9876543210",
    "room 101",
    "v2.0.1",
    "1/2",
    "#1",
    # urls, hashtags, handles, code
    "https://example.com/path?q=1&x=2#frag",
    "www.example.org",
    "mail me at someone@example.com",
    "#sunset #nofilter #photooftheday",
    "@user hello",
    "def f(x): return x**2",
    "for (int i = 0; i < n; i++) { sum += a[i]; }",
    '<div class="photo">cat</div>',
    "snake_case_name",
    "camelCaseName",
    "SCREAMING_SNAKE",
    "file.tar.gz",
    "C:\\Users\\test\\image.png",
    "/usr/local/bin/python3",
    "SELECT * FROM cats WHERE color = 'red';",
    "a => b",
    "x != y && y >= z",
    '{"key": [1, 2, 3]}',
    # whitespace
    "  leading spaces",
    "trailing spaces   ",
    "  both  ",
    "multiple     spaces   inside",
    "tab\tseparated\tvalues",
    "line one\nline two",
    "blank\n\n\nlines",
    "\r\nwindows newline",
    "\t\t",
    "\n",
    "   ",
    " ",
    "",
    " a ",
    # case
    "ALL CAPS PHOTO OF A CAT",
    "A Photo Of A Cat",
    "aLtErNaTiNg CaSe",
    "NASA and the USA",
    # special-token literals
    "<|endoftext|>",
    "<|startoftext|>",
    "a cat <|endoftext|> a dog",
    "<|startoftext|>a photo<|endoftext|>",
    "<|ENDOFTEXT|>",
    "<|endoftext",
    "<endoftext>",
    # html entities and markup
    "fish &amp; chips",
    "&lt;3 you",
    "it&#39;s here",
    "&quot;quoted&quot;",
    "&nbsp;spaced",
    "<b>bold</b> text",
    # math and symbols
    "∑ x² ≤ √2",
    "π ≈ 3.14159",
    "∀x ∃y: x ∈ A ∧ y ∉ B",
    "a ≠ b ⇒ c",
    "∞ + 1 = ∞",
    "5 × 3 ÷ 2 ± 1",
    "°C and °F",
    "€100 £50 ¥1000 ₹20",
    "© ® ™",
    "→ ← ↑ ↓",
    "★☆✓✗",
    "§ ¶ † ‡",
    # long prompts (more than 77 tokens)
    "a photo of a cat " * 20,
    "A VERY LONG PROMPT " * 30,
    " ".join(str(i) for i in range(1, 101)),
    "supercalifragilisticexpialidocious" * 5,
    (
        "In the early morning light, a small fishing boat drifts across a calm lake surrounded by pine "
        "forests, while a heron stands motionless in the shallows, mist rises from the water, distant "
        "mountains glow pink and orange, a wooden pier stretches out from the shore with two old "
        "lanterns, and a dog sleeps curled up on a blanket next to a basket of freshly caught fish, "
        "painted in the style of a nineteenth century landscape artist with soft brush strokes."
    ),
    "🐱" * 40,
    "猫" * 90,
    "!" * 200,
    "a, " * 60,
    "word " * 76,
]

# Texts fed to the tiny model (the last one is chosen so that it tokenises to exactly 16 ids).
TINY_TEXTS = ["a photo of a cat", "", "a red circle on a blue background"]
TINY_SEQ_LEN = 16
TINY_LONG_CANDIDATES = [
    "a small brown dog and a big white cat play with a red ball in the green garden near the old house",
    "two yellow birds sit on a long branch above a quiet river while the sun sets behind the blue hills",
    "the little girl in a pink dress holds a bunch of bright flowers next to her grandmother at the market",
]

# Prompts of the full-size reference.
FULL_PROMPTS = [
    "a photo of a cat",
    "a photo of a dog",
    "a red circle on a blue background",
    "",
    "an astronaut riding a horse on the moon, digital art",
    "A VERY LONG PROMPT " * 30,
]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def human(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


# ---------------------------------------------------------------------------------------------
# Tiny tokenizer: our own CLIP-style byte-level BPE.
# ---------------------------------------------------------------------------------------------

TINY_VOCAB_SIZE = 1000
WORDS = {
    "color": "red green blue yellow black white orange purple pink brown gray golden silver dark bright pale".split(),
    "shape": "circle square triangle star line dot stripe pattern grid spiral heart cross ring".split(),
    "animal": "cat dog horse bird fish cow sheep lion tiger bear rabbit mouse duck elephant monkey frog".split(),
    "object": (
        "car bicycle boat train plane house tree flower chair table cup bottle book phone clock lamp "
        "ball hat shoe bag window door bridge road river mountain beach city garden kitchen"
    ).split(),
    "adjective": "small big old new happy sleepy tall short round soft shiny wet dry wooden tiny huge".split(),
    "place": "park street beach forest field room table floor sky snow grass water road wall".split(),
    "style": "photo picture painting drawing sketch rendering photograph illustration cartoon image".split(),
    "verb": "sitting standing running sleeping playing flying swimming jumping eating looking".split(),
}
TEMPLATES = [
    "a {style} of a {color} {animal}",
    "a {style} of a {adjective} {object}",
    "a {color} {shape} on a {color} background",
    "the {animal} is {verb} in the {place}",
    "two {animal}s {verb} near a {color} {object}",
    "a {adjective} {animal} {verb} on the {place}",
    "an old {style} of the {object} in the {place}",
    "there is a {color} {object} next to the {object}",
    "{animal}s and {animal}s in a {adjective} {place}",
    "a close-up {style} of a {shape} made of {color} {object}s",
]


def tiny_corpus() -> list[str]:
    rng = random.Random(SEED)
    lines = []
    for _ in range(6000):
        template = rng.choice(TEMPLATES)
        fields = {k: rng.choice(v) for k, v in WORDS.items()}
        # The same key can appear twice in a template; str.format uses one value per key, which is fine.
        lines.append(template.format(**fields))
    lines += TINY_TEXTS + TINY_LONG_CANDIDATES + [p for p in PARITY_PROMPTS if len(p) < 300]
    return lines


def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2/CLIP byte -> printable character table, in CLIP's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_pipeline_tokenizer(bpe: models.BPE) -> Tokenizer:
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    return tok


def train_merges(corpus: list[str], n_merges: int) -> list[tuple[str, str]]:
    tok = clip_pipeline_tokenizer(models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    trainer = trainers.BpeTrainer(
        vocab_size=4 * TINY_VOCAB_SIZE,  # learn more than needed, keep the first n_merges merges
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        special_tokens=[],
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]
    if len(merges) < n_merges:
        raise SystemExit(f"corpus too small: only {len(merges)} merges learned, need {n_merges}")
    return merges[:n_merges]


def build_tiny_tokenizer(shared: Path, out: Path) -> Tokenizer:
    """Write tokenizer.json (+ vocab.json, merges.txt, configs) with CLIP's exact pipeline.

    Vocabulary layout copies real CLIP: 256 byte symbols, the same 256 with '</w>', one id per merge
    (in merge order), then <|startoftext|> and <|endoftext|> as the last two ids.
    """
    symbols = list(bytes_to_unicode().values())
    n_merges = TINY_VOCAB_SIZE - 2 * len(symbols) - 2
    corpus = tiny_corpus()
    merges = train_merges(corpus, n_merges)
    if merges != train_merges(corpus, n_merges):
        raise SystemExit("BPE training is not deterministic")

    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    if len(set(vocab_list)) != TINY_VOCAB_SIZE:
        raise SystemExit("duplicate tokens in the tiny vocabulary")
    vocab = {t: i for i, t in enumerate(vocab_list)}
    bos_id, eos_id = vocab[BOS], vocab[EOS]

    # Same JSON structure as the real tokenizer.json; only the model and the special ids change.
    data = json.loads((shared / "tokenizer.json").read_text(encoding="utf-8"))
    data["truncation"] = None
    data["padding"] = None
    for added in data["added_tokens"]:
        added["id"] = vocab[added["content"]]
    data["post_processor"]["cls"] = [BOS, bos_id]
    data["post_processor"]["sep"] = [EOS, eos_id]
    data["model"]["vocab"] = vocab
    data["model"]["merges"] = [list(m) for m in merges]
    text = json.dumps(data, ensure_ascii=False, indent=2)
    tok = Tokenizer.from_str(text)  # validates the file
    (out / "tokenizer.json").write_text(text + "\n", encoding="utf-8")

    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    tok_config = json.loads((shared / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_config["added_tokens_decoder"] = {
        str(vocab[v["content"]]): v for v in tok_config["added_tokens_decoder"].values()
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(shared / "special_tokens_map.json", out / "special_tokens_map.json")

    # Checks: transformers loads it, a caption is [bos, ..., eos], any text is encodable.
    hf = CLIPTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    ids = hf("a photo of a cat")["input_ids"]
    assert ids[0] == bos_id and ids[-1] == eos_id and len(ids) > 2, ids
    assert hf.bos_token_id == bos_id and hf.eos_token_id == eos_id and hf.pad_token_id == eos_id
    for prompt in PARITY_PROMPTS:
        enc = tok.encode(prompt)
        assert all(i is not None for i in enc.ids) and enc.ids[0] == bos_id, prompt
    print(f"tiny tokenizer: {len(vocab)} tokens ({n_merges} merges), 'a photo of a cat' -> {ids}")
    return tok


# ---------------------------------------------------------------------------------------------
# Tiny model
# ---------------------------------------------------------------------------------------------


def tiny_config_dict() -> dict:
    return {
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": 24,
        "logit_scale_init_value": 2.6592,
        "initializer_factor": 1.0,
        "torch_dtype": "float32",
        "text_config": {
            "model_type": "clip_text_model",
            "vocab_size": TINY_VOCAB_SIZE,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": 24,
            "bos_token_id": 0,
            "pad_token_id": 1,
            "eos_token_id": 2,
            "attention_dropout": 0.0,
            "dropout": 0.0,
            "initializer_factor": 1.0,
            "initializer_range": 0.02,
        },
        "vision_config": {
            "model_type": "clip_vision_model",
            "image_size": 32,
            "patch_size": 8,
            "num_channels": 3,
            "hidden_size": 48,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-6,
            "projection_dim": 24,
            "attention_dropout": 0.0,
            "dropout": 0.0,
            "initializer_factor": 1.0,
            "initializer_range": 0.02,
        },
    }


def eager_model(config: CLIPConfig) -> CLIPModel:
    config._attn_implementation = "eager"
    model = CLIPModel(config)
    model.eval()
    return model


def state_dict_for_saving(model: CLIPModel) -> dict[str, torch.Tensor]:
    """`model.state_dict()` minus the position_ids buffers (the Rust loader ignores them)."""
    sd = model.state_dict()
    return {k: v.detach().contiguous().clone() for k, v in sd.items() if not k.endswith("position_ids")}


def randomize_tiny_weights(model: CLIPModel) -> None:
    """Overwrite every parameter with seeded values big enough that outputs are input-sensitive."""
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name == "logit_scale":
                p.fill_(2.9)
            elif "norm" in name and name.endswith(".weight"):  # all LayerNorms (incl. pre_layrnorm)
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            elif name.endswith("class_embedding"):
                p.copy_(0.5 * noise)
            elif name.endswith(("token_embedding.weight", "position_embedding.weight")):
                p.copy_(noise)
            elif p.dim() >= 2:  # Linear [out, in] and the patch Conv2d [out, c, k, k]: 2 / sqrt(fan_in)
                fan_in = p[0].numel()
                p.copy_(2.0 * noise / math.sqrt(fan_in))
            else:
                raise SystemExit(f"no randomization rule for parameter {name}")


def tiny_inputs(tok: Tokenizer) -> dict[str, torch.Tensor]:
    hf = CLIPTokenizerFast(tokenizer_file=str(FIXTURES / "tiny" / "tokenizer.json"))
    texts = list(TINY_TEXTS)
    exact = None
    for candidate in TINY_LONG_CANDIDATES:
        words = candidate.split()
        for n in range(1, len(words) + 1):
            text = " ".join(words[:n])
            if len(tok.encode(text).ids) == TINY_SEQ_LEN:
                exact = text
                break
        if exact:
            break
    if exact is None:
        raise SystemExit("no candidate tokenizes to exactly 16 ids")
    texts.append(exact)
    enc = hf(texts, padding="max_length", max_length=TINY_SEQ_LEN, truncation=True, return_tensors="pt")
    gen = torch.Generator().manual_seed(SEED + 1)
    pixel_values = torch.randn((3, 3, 32, 32), generator=gen, dtype=torch.float32)
    print("tiny texts:", json.dumps(texts))
    return {
        "text.input_ids": enc["input_ids"].to(torch.int64),
        "text.attention_mask": enc["attention_mask"].to(torch.int64),
        "vision.pixel_values": pixel_values,
    }


@torch.no_grad()
def tiny_reference(model: CLIPModel, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ids, mask, pixels = inputs["text.input_ids"], inputs["text.attention_mask"], inputs["vision.pixel_values"]
    text = model.text_model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    vision = model.vision_model(pixel_values=pixels, output_hidden_states=True)
    both = model(input_ids=ids, attention_mask=mask, pixel_values=pixels)
    out = dict(inputs)
    out["text.last_hidden_state"] = text.last_hidden_state
    out["text.pooler_output"] = text.pooler_output
    out["text.text_embeds"] = model.text_projection(text.pooler_output)
    for i, h in enumerate(text.hidden_states):
        out[f"text.hidden_states.{i}"] = h
    out["vision.last_hidden_state"] = vision.last_hidden_state
    out["vision.pooler_output"] = vision.pooler_output
    out["vision.image_embeds"] = model.visual_projection(vision.pooler_output)
    for i, h in enumerate(vision.hidden_states):
        out[f"vision.hidden_states.{i}"] = h
    out["logits_per_image"] = both.logits_per_image
    out["logits_per_text"] = both.logits_per_text
    out["logit_scale"] = model.logit_scale.detach().reshape(1)
    out["logit_scale_exp"] = model.logit_scale.detach().exp().reshape(1)

    # Cross-checks against the public API.
    normalize = torch.nn.functional.normalize
    assert torch.allclose(normalize(out["text.text_embeds"], dim=-1), both.text_embeds, atol=1e-6)
    assert torch.allclose(normalize(out["vision.image_embeds"], dim=-1), both.image_embeds, atol=1e-6)
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def sanity_check(ref: dict[str, torch.Tensor], label: str) -> None:
    for k, v in ref.items():
        if v.is_floating_point():
            assert torch.isfinite(v).all(), f"{label}: {k} has non-finite values"
            assert v.abs().max() < 1e3, f"{label}: {k} is huge ({v.abs().max():.1f})"
    for key in ("text.text_embeds", "vision.image_embeds"):
        e = torch.nn.functional.normalize(ref[key], dim=-1)
        cos = e @ e.T
        off = cos[~torch.eye(len(e), dtype=torch.bool)]
        assert off.max() < 0.9, f"{label}: {key} rows are too similar (max cos {off.max():.3f})"
        print(f"  {label} {key}: pairwise cosine in [{off.min():.3f}, {off.max():.3f}]")


def load_weights(model: CLIPModel, path: Path) -> None:
    """Loads a saved checkpoint as f32; only the `position_ids` buffers may be absent from it."""
    loaded = {k: v.to(torch.float32) for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(loaded, strict=False)
    assert not unexpected and all(k.endswith("position_ids") for k in missing), (missing, unexpected)


def make_tiny(shared: Path) -> None:
    out = FIXTURES / "tiny"
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer(shared, out)

    config_dict = tiny_config_dict()
    (out / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n", encoding="utf-8")
    config = CLIPConfig.from_json_file(str(out / "config.json"))
    assert config.text_config.hidden_act == "gelu" and config.vision_config.hidden_act == "quick_gelu"
    assert config.text_config.layer_norm_eps == 1e-5 and config.vision_config.layer_norm_eps == 1e-6
    assert config.text_config.eos_token_id == 2 and config.projection_dim == 24

    torch.manual_seed(SEED)
    model = eager_model(config)
    randomize_tiny_weights(model)
    buffers = [k for k in model.state_dict() if k.endswith("position_ids")]
    print(f"position_ids entries in model.state_dict(): {buffers or 'none'}")

    weights = state_dict_for_saving(model)
    meta = {"format": "pt"}
    save_file(weights, str(out / "model.safetensors"), metadata=meta)
    save_file({k: v.to(torch.float16) for k, v in weights.items()}, str(out / "model-f16.safetensors"), metadata=meta)
    save_file({k: v.to(torch.bfloat16) for k, v in weights.items()}, str(out / "model-bf16.safetensors"), metadata=meta)

    inputs = tiny_inputs(tok)
    for suffix in ("", "-f16", "-bf16"):
        load_weights(model, out / f"model{suffix}.safetensors")
        ref = tiny_reference(model, inputs)
        sanity_check(ref, f"reference{suffix}")
        save_file(ref, str(out / f"reference{suffix}.safetensors"), metadata=meta)

    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"tiny model written to {out.relative_to(REPO)} ({human(total)})")


# ---------------------------------------------------------------------------------------------
# Fixture images
# ---------------------------------------------------------------------------------------------


def pattern(width: int, height: int, rng: np.random.Generator, noise: float = 6.0) -> np.ndarray:
    """An RGB uint8 scene: gradients, a few shapes with hard edges, and mild noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [
            255 * x / max(width - 1, 1),
            255 * y / max(height - 1, 1),
            127.5 + 127.5 * np.sin((x + 2 * y) / max(width, height) * 6.0),
        ],
        axis=-1,
    )
    canvas = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(6):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1 + 1, y1 + 1], fill=color)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=color)
    arr = np.asarray(canvas).astype(np.float32)
    if noise:
        arr = arr + rng.normal(0, noise, arr.shape)
    return arr.round().clip(0, 255).astype(np.uint8)


def block_noise(arr: np.ndarray, rng: np.random.Generator, block: int = 4, amplitude: int = 12) -> np.ndarray:
    """Add noise constant over block x block cells (compresses far better than per-pixel noise in PNG)."""
    h, w = arr.shape[:2]
    cells = rng.integers(
        -amplitude, amplitude + 1, ((h + block - 1) // block, (w + block - 1) // block) + arr.shape[2:]
    )
    up = np.repeat(np.repeat(cells, block, axis=0), block, axis=1)[:h, :w]
    return (arr.astype(np.int32) + up).clip(0, 255).astype(np.uint8)


def write_images(out: Path) -> list[tuple[str, str]]:
    """Write the fixture images; returns [(file name, description)]."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    described = []

    def add(name: str, desc: str) -> None:
        described.append((name, desc))

    Image.fromarray(pattern(640, 427, rng)).save(out / "landscape.jpg", quality=88)
    add("landscape.jpg", "RGB baseline JPEG, 640x427 (landscape; resized to 335x224, then center-cropped)")

    Image.fromarray(block_noise(pattern(300, 500, rng, noise=0), rng)).save(out / "portrait.png", optimize=True)
    add("portrait.png", "RGB PNG, 300x500 (portrait; resized to 224x373)")

    Image.fromarray(pattern(50, 37, rng, noise=10)).save(out / "tiny.png")
    add("tiny.png", "RGB PNG, 50x37, smaller than 224 (bicubic upsampling to 302x224)")

    gray = block_noise(pattern(200, 150, rng, noise=0), rng, block=2).mean(axis=-1).round().astype(np.uint8)
    Image.fromarray(gray, mode="L").save(out / "gray.png", optimize=True)
    add("gray.png", "grayscale (mode L) PNG, 200x150")

    rgb = block_noise(pattern(256, 192, rng, noise=0), rng)
    yy, xx = np.mgrid[0:192, 0:256]
    alpha = (255 * xx / 255).astype(np.uint8)  # left transparent -> right opaque
    alpha[(xx - 170) ** 2 + (yy - 96) ** 2 < 40**2] = 0  # fully transparent hole, coloured pixels underneath
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(out / "rgba.png", optimize=True)
    add(
        "rgba.png",
        "RGBA PNG, 256x192; alpha ramps 0 (left) to 255 (right) with a fully transparent disc. "
        "The colour channels under transparent pixels are not black, so dropping alpha (what "
        "PIL's convert('RGB') does) differs from compositing on a background",
    )

    Image.fromarray(pattern(240, 180, rng, noise=0)).quantize(colors=32, method=Image.Quantize.MEDIANCUT).save(
        out / "palette.gif"
    )
    add("palette.gif", "palette (mode P) GIF, 32 colours, 240x180")

    cmyk = Image.fromarray(pattern(320, 240, rng)).convert("CMYK")
    cmyk_arr = np.asarray(cmyk).copy()
    cmyk_arr[..., 3] = (np.mgrid[0:240, 0:320][1] * 120 // 319).astype(np.uint8)  # add real K (black) ink
    Image.fromarray(cmyk_arr, mode="CMYK").save(out / "cmyk.jpg", quality=90)
    add(
        "cmyk.jpg",
        "CMYK JPEG (Adobe APP14 marker, as written by Pillow/libjpeg), 320x240, K channel ramps 0..120 "
        "left to right. PIL converts CMYK to RGB naively: R = (255-C)(255-K)/255, no ICC profile",
    )

    stored = pattern(320, 200, rng)
    stored[:40, :80] = (255, 0, 0)  # red block top-left of the stored (unrotated) image
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    Image.fromarray(stored).save(out / "exif_rotate90.jpg", quality=88, exif=exif.tobytes())
    add(
        "exif_rotate90.jpg",
        "RGB JPEG stored 320x200 with EXIF Orientation=6; displayed (after exif_transpose) as 200x320 "
        "with the red block at the top-right",
    )

    Image.fromarray(block_noise(pattern(224, 224, rng, noise=0), rng, block=2, amplitude=6)).save(
        out / "square224.png", optimize=True
    )
    add("square224.png", "RGB PNG, exactly 224x224 (resize and crop are no-ops)")

    yy, xx = np.mgrid[0:120, 0:160]
    deep = (xx * 65535 // 159).astype(np.uint16)
    deep[:, :40] = (yy[:, :40] * 2 + xx[:, :40] * 3).astype(np.uint16)  # a dark band with values < 256
    Image.fromarray(deep).save(out / "gray16.png")
    add(
        "gray16.png",
        "16-bit grayscale PNG (PIL mode I;16), 160x120: left band has values 0..~470, the rest ramps "
        "0..65535. PIL's convert('RGB') CLAMPS 16-bit values to 0..255 (it does not scale by 1/257), "
        "so almost the whole ramp becomes white in the HF reference",
    )

    Image.fromarray(pattern(400, 300, rng)).save(out / "photo.webp", quality=80)
    add("photo.webp", "RGB lossy WebP, 400x300")

    (out / "not_an_image.png").write_bytes(b"This is plain text, not a PNG file.\n")
    add("not_an_image.png", "plain text with a .png extension, for error handling tests (no reference pixels)")
    return described


def slow_image_processor(shared: Path, **overrides) -> SlowCLIPImageProcessor:
    config = json.loads((shared / "preprocessor_config.json").read_text(encoding="utf-8"))
    config.pop("image_processor_type", None)
    config.update(overrides)
    return SlowCLIPImageProcessor(**config)


def make_images(shared: Path) -> None:
    out = FIXTURES / "images"
    described = write_images(out)
    processor = slow_image_processor(shared, do_rescale=False, do_normalize=False)
    pixels, notes = {}, []
    for name, _ in described:
        if name == "not_an_image.png":
            continue
        raw = Image.open(out / name)
        image = load_image(str(out / name))
        values = processor(images=image, return_tensors="np")["pixel_values"][0]
        assert values.shape == (3, 224, 224), values.shape
        assert np.array_equal(values, values.round()) and values.min() >= 0 and values.max() <= 255
        pixels[name] = np.ascontiguousarray(values.astype(np.uint8))
        notes.append(
            f"| `{name}` | {raw.format} | {raw.mode} | {raw.size[0]}x{raw.size[1]} | {image.size[0]}x{image.size[1]} |"
        )
    save_numpy(pixels, str(out / "reference_pixels.safetensors"), metadata={"format": "np"})

    lines = [
        "# Fixture images",
        "",
        "Generated by `tests/parity/make_fixtures.py` (seeded numpy + Pillow drawing: gradients, random",
        "ellipses/rectangles with hard edges, and noise, so that resampling details matter). Regenerate with",
        "`.venv-parity/bin/python tests/parity/make_fixtures.py tiny`.",
        "",
        "## Files",
        "",
    ]
    lines += [f"- `{name}`: {desc}." for name, desc in described]
    lines += [
        "",
        "## Reference preprocessing",
        "",
        "`reference_pixels.safetensors` holds, for every image except `not_an_image.png`, a `U8` tensor",
        "`[3, 224, 224]` (channels first, RGB) keyed by file name. It is what Hugging Face transformers",
        f"{transformers.__version__} produces with `transformers.image_utils.load_image(path)` (Pillow",
        '`ImageOps.exif_transpose` then `convert("RGB")`) followed by the PIL-based ("slow")',
        f"`{SlowCLIPImageProcessor.__name__}` configured from openai/clip-vit-base-patch32's",
        "`preprocessor_config.json` (shortest edge resized to 224 with PIL bicubic, the long edge",
        "`int(224 * long / short)` truncated, then a 224x224 center crop at `((h-224)//2, (w-224)//2)`)",
        "with `do_rescale=False, do_normalize=False`, so the values are the resized, cropped 8-bit pixels.",
        "To get the model input, divide by 255 and normalise with the CLIP mean/std.",
        "",
        "| file | format | mode as stored | stored size | size after load_image |",
        "| --- | --- | --- | --- | --- |",
        *notes,
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")
    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"{len(pixels)} fixture images + reference pixels written to {out.relative_to(REPO)} ({human(total)})")


# ---------------------------------------------------------------------------------------------
# Tokenizer parity with the real CLIP tokenizer
# ---------------------------------------------------------------------------------------------


def slow_tokenizer(shared: Path):
    """The pure-Python CLIPTokenizer from vocab.json + merges.txt (transformers 4.x only)."""
    if int(transformers.__version__.split(".")[0]) >= 5:
        return None  # transformers 5 removed the Python implementation
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab_file=str(shared / "vocab.json"), merges_file=str(shared / "merges.txt"))


def make_tokenizer_parity(shared: Path) -> None:
    assert len(PARITY_PROMPTS) >= 220 and len(set(PARITY_PROMPTS)) == len(PARITY_PROMPTS)
    fast = CLIPTokenizerFast(tokenizer_file=str(shared / "tokenizer.json"))
    slow = slow_tokenizer(shared)
    cases, differ = [], []
    for text in PARITY_PROMPTS:
        enc = fast(text, padding="max_length", max_length=77, truncation=True)
        full = fast(text)["input_ids"]
        case = {"text": text, "ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "ids_full": full}
        assert len(case["ids"]) == 77 and case["ids"][: min(len(full), 76)] == full[: min(len(full), 76)]
        if slow is not None:
            ids_slow = slow(text)["input_ids"]
            if ids_slow != full:
                case["ids_slow"] = ids_slow
                differ.append(text)
        cases.append(case)
    doc = {
        "tokenizer_sha256": sha256_file(shared / "tokenizer.json"),
        "transformers_version": transformers.__version__,
        "tokenizers_version": __import__("tokenizers").__version__,
        "note": (
            "ids/attention_mask: CLIPTokenizerFast(tokenizer_file=openai/clip-vit-base-patch32 tokenizer.json)"
            "(text, padding='max_length', max_length=77, truncation=True). ids_full: same without padding or"
            " truncation. ids_slow (only where different from ids_full): the Python CLIPTokenizer from"
            " vocab.json + merges.txt (with ftfy installed)."
        ),
        "cases": cases,
    }
    path = FIXTURES / "tokenizer_parity.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(cases)} tokenizer cases written to {path.relative_to(REPO)} ({human(path.stat().st_size)})")
    if slow is None:
        print("  slow tokenizer not available in this transformers version: no ids_slow recorded")
    else:
        print(f"  fast and slow tokenizers differ on {len(differ)} prompts:")
        for text in differ:
            print("   ", json.dumps(text, ensure_ascii=False)[:100])


# ---------------------------------------------------------------------------------------------
# Full-size random checkpoint
# ---------------------------------------------------------------------------------------------


def make_full(shared: Path, arch: str, out: Path, seed: int) -> None:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    config = CLIPConfig.from_json_file(str(shared / "config.json"))
    if arch == "b16":
        config.vision_config.patch_size = 16
    torch.manual_seed(seed)
    model = eager_model(config)  # default Hugging Face initialization
    t_build = time.perf_counter()

    config_dict = json.loads((shared / "config.json").read_text(encoding="utf-8"))
    config_dict["vision_config"]["patch_size"] = config.vision_config.patch_size
    (out / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n", encoding="utf-8")
    save_file(state_dict_for_saving(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    shutil.copyfile(shared / "tokenizer.json", out / "tokenizer.json")
    t_save = time.perf_counter()

    image_dir = FIXTURES / "images"
    names = sorted(
        p.name
        for p in image_dir.iterdir()
        if p.suffix in {".jpg", ".png", ".gif", ".webp"} and p.name != "not_an_image.png"
    )
    processor = slow_image_processor(shared)
    pixel_values = torch.from_numpy(
        np.stack(
            [processor(images=load_image(str(image_dir / n)), return_tensors="np")["pixel_values"][0] for n in names]
        )
    )
    tokenizer = CLIPTokenizerFast(tokenizer_file=str(shared / "tokenizer.json"))
    enc = tokenizer(FULL_PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    t_pre = time.perf_counter()

    with torch.no_grad():
        image_embeds = model.visual_projection(model.vision_model(pixel_values=pixel_values).pooler_output)
        t_vis = time.perf_counter()
        text_out = model.text_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        text_embeds = model.text_projection(text_out.pooler_output)
    t_txt = time.perf_counter()
    image_embeds = torch.nn.functional.normalize(image_embeds, dim=-1)
    text_embeds = torch.nn.functional.normalize(text_embeds, dim=-1)
    similarity = image_embeds @ text_embeds.T

    reference = {
        "model": f"random {arch} seed {seed} (transformers {transformers.__version__} default init)",
        "images": names,
        "texts": FULL_PROMPTS,
        "input_ids": enc["input_ids"].tolist(),
        "image_embeds": image_embeds.tolist(),
        "text_embeds": text_embeds.tolist(),
        "similarity": similarity.tolist(),
        "logit_scale": float(model.logit_scale.detach().exp()),
        "pixel_values_checksum": [float(p.double().sum()) for p in pixel_values],
        "pixel_values_checksum_note": "per image: sum of the normalized float32 pixel values (float64 accumulation)",
    }
    (out / "reference.json").write_text(json.dumps(reference, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"full {arch} written to {out}")
    print(
        f"timings: build {t_build - t0:.1f}s, save {t_save - t_build:.1f}s, preprocess {len(names)} images + "
        f"{len(FULL_PROMPTS)} texts {t_pre - t_save:.1f}s, vision forward {t_vis - t_pre:.1f}s, "
        f"text forward {t_txt - t_vis:.1f}s, total {time.perf_counter() - t0:.1f}s"
    )


def make_gradients() -> None:
    """Loss and gradients of CLIP's contrastive loss (`return_loss=True`) for the tiny model on the
    first three text/image pairs of `reference.safetensors`: what one training step must compute."""
    out = FIXTURES / "tiny"
    config = CLIPConfig.from_json_file(str(out / "config.json"))
    model = eager_model(config)
    load_weights(model, out / "model.safetensors")
    ref = load_file(str(out / "reference.safetensors"))
    n = ref["vision.pixel_values"].shape[0]
    result = model(
        input_ids=ref["text.input_ids"][:n],
        attention_mask=ref["text.attention_mask"][:n],
        pixel_values=ref["vision.pixel_values"],
        return_loss=True,
    )
    result.loss.backward()
    grads = {"loss": result.loss.detach().reshape(1)}
    for name, param in model.named_parameters():
        assert param.grad is not None, f"no gradient for {name}"
        grads[f"grad.{name}"] = param.grad.detach().contiguous().clone()
    save_file(grads, str(out / "gradients.safetensors"), metadata={"format": "pt", "pairs": str(n)})
    print(f"loss {result.loss.item():.6f} and {len(grads) - 1} gradients written to tiny/gradients.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="tiny", choices=["tiny", "full", "gradients"])
    parser.add_argument("--arch", default="b32", choices=["b32", "b16"], help="full mode: architecture")
    parser.add_argument("--out", type=Path, help="full mode: output folder (default tests/fixtures/full/ARCH)")
    parser.add_argument("--seed", type=int, default=SEED, help="full mode: weight initialization seed")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder with the real CLIP files")
    args = parser.parse_args()
    if not (args.shared / "tokenizer.json").is_file():
        sys.exit(f"missing {args.shared / 'tokenizer.json'} (use --shared)")
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    if args.mode == "gradients":
        make_gradients()
    elif args.mode == "tiny":
        make_tiny(args.shared)
        make_images(args.shared)
        make_tokenizer_parity(args.shared)
    else:
        make_full(args.shared, args.arch, args.out or FIXTURES / "full" / args.arch, args.seed)


if __name__ == "__main__":
    main()
