"""The tokenizer files must be GPT-2's: its vocabulary and merges, and in a tokenizer.json every other part too.

Expected hashes come from the files the project ships (data/gpt2-tokenizer: vocab.json and
merges.txt, byte for byte the hub's). A folder may carry them as those two files or inside a
fast tokenizer's tokenizer.json (what save_pretrained writes), so each is hashed in a canonical
form: the vocabulary as sorted compact JSON, the merges as one "left right" pair per line.
The server loads the whole tokenizer.json, whose normalizer, pre-tokenizer, post-processor,
decoder, added tokens, truncation and padding change every prompt and every answer; each must
equal GPT-2's, built with the tokenizers library from the shipped files (both files read through
it, so defaults a writer left out compare equal). Two forms that change nothing are accepted as
transformers writes them: a post-processor adding no tokens, and padding with <|endoftext|>.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from ..paths import TOKENIZER_DIR
from .findings import Finding, Severity
from .gpt2_tokenizer import structure_problems


def vocab_sha256(vocab: dict[str, int]) -> str:
    return hashlib.sha256(
        json.dumps(vocab, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()


def merges_sha256(merges: list[Any]) -> str:
    pairs = [" ".join(pair) if isinstance(pair, list) else str(pair) for pair in merges]
    return hashlib.sha256("\n".join(pairs).encode()).hexdigest()


def _merges_from_text(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#version")]


@cache
def recorded() -> dict[str, str]:
    """The expected canonical hashes, computed from the shipped GPT-2 tokenizer files."""
    return {
        "vocab": vocab_sha256(json.loads((TOKENIZER_DIR / "vocab.json").read_text(encoding="utf-8"))),
        "merges": merges_sha256(_merges_from_text((TOKENIZER_DIR / "merges.txt").read_text(encoding="utf-8"))),
    }


def check_tokenizer(files: dict[str, Path]) -> list[Finding]:
    """files: the layout's tokenizer files (tokenizer.json, vocab.json, merges.txt) by relative path."""
    if not files:
        return [
            Finding(
                "", "tokenizer", Severity.MEDIUM, "no tokenizer files (tokenizer.json, or vocab.json and merges.txt)"
            )
        ]
    findings = []
    for relative, path in files.items():
        try:
            text = path.read_text(encoding="utf-8")
            hashes = _hashes(Path(relative).name, text)
            problems = _structure(Path(relative).name, text)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            findings.append(
                Finding(
                    relative, "tokenizer", Severity.MEDIUM, f"cannot read the tokenizer in it ({type(exc).__name__})"
                )
            )
            continue
        findings += [
            Finding(
                relative,
                "tokenizer",
                Severity.MEDIUM,
                f"its {part} is not GPT-2's (sha256 {digest[:12]}…, recorded {recorded()[part][:12]}…)",
            )
            for part, digest in hashes.items()
            if digest != recorded()[part]
        ]
        findings += [Finding(relative, "tokenizer", Severity.MEDIUM, problem) for problem in problems]
    return findings


def _hashes(name: str, text: str) -> dict[str, str]:
    if name == "vocab.json":
        return {"vocab": vocab_sha256(json.loads(text))}
    if name == "merges.txt":
        return {"merges": merges_sha256(_merges_from_text(text))}
    model = json.loads(text)["model"]
    if model.get("type") != "BPE":
        raise ValueError("not a BPE tokenizer")
    return {"vocab": vocab_sha256(model["vocab"]), "merges": merges_sha256(model["merges"])}


def _structure(name: str, text: str) -> list[str]:
    return structure_problems(text) if name == "tokenizer.json" else []
