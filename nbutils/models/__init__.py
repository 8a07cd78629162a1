"""Models: one loader for every checkpoint, prompt formats, the tiny from-scratch model."""

from .loading import ensure_base_model, get_device, load_model, load_model_and_tokenizer, load_tokenizer
from .prompts import encode_prompt, encode_qa, format_prompt

__all__ = ["encode_prompt", "encode_qa", "ensure_base_model", "format_prompt", "get_device",
           "load_model", "load_model_and_tokenizer", "load_tokenizer"]
