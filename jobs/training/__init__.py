"""The training pipeline's heavy parts (torch, transformers, peft, trl), imported by workers only."""
