"""Model names, as Ollama spells them: [host/][namespace/]model[:tag]."""

import re

# Ollama's names: [host/][namespace/]model[:tag], each part a plain word.
_PART = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,79}"
MODEL_NAME_PATTERN = rf"^{_PART}(?:/{_PART}){{0,2}}(?::[A-Za-z0-9_][A-Za-z0-9._-]{{0,79}})?$"
_NAME = re.compile(MODEL_NAME_PATTERN)


def normalize_model_name(name):
    """`name` -> `name:latest`; None when it is not a valid model name."""
    # fullmatch: $ alone also matches before a final newline.
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return None
    return name if ":" in name else f"{name}:latest"
