"""Pure functions over paths: merge a LoRA adapter, convert HF → GGUF, quantize.

Imports nothing from the rest of the project so workers and the `python -m quantize` CLI can use it
alone. The functions arrive with the training pipeline issue.
"""
