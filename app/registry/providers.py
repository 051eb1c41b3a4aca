"""Provider templates: what the add form pre-fills and the help text shown beside each field."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.models import Provider


@dataclass(frozen=True)
class ProviderTemplate:
    label: str
    summary: str
    defaults: dict[str, object] = field(default_factory=dict)
    help: dict[str, str] = field(default_factory=dict)


PROVIDER_TEMPLATES: dict[str, ProviderTemplate] = {
    Provider.LOCAL_GGUF: ProviderTemplate(
        label="Local GGUF (llama.cpp)",
        summary="A .gguf file served on this machine's CPU by llama.cpp. Upload one, or (admins) "
        "register a file already in the model store. Size, quantization and context length are read "
        "from its header.",
        defaults={"supports_streaming": True, "supports_tools": True, "max_tokens": 512},
        help={
            "gguf_file": "Any llama.cpp GGUF (Q4_K_M and Q8_0 are good CPU choices). The file must "
            "carry a chat template for chat to work well.",
            "supports_tools": "Tools are passed to the model's chat template; Toolsmith-trained models "
            "answer with <tool_call> blocks.",
        },
    ),
    Provider.HF_INFERENCE: ProviderTemplate(
        label="Hugging Face Inference",
        summary="Hugging Face's Inference Providers router, or a dedicated Inference Endpoint / TGI server.",
        defaults={"supports_streaming": True, "supports_tools": True, "max_tokens": 512},
        help={
            "base_url": "Leave empty for the Inference Providers router. For a dedicated Inference "
            "Endpoint or a TGI server, paste its URL (https://xyz.endpoints.huggingface.cloud).",
            "model_id": "The Hub id, like username/model-name (append :provider to pin one, e.g. :together).",
            "api_key": "A token from huggingface.co/settings/tokens with the “Make calls to Inference "
            "Providers” permission.",
        },
    ),
    Provider.OPENAI_COMPATIBLE: ProviderTemplate(
        label="OpenAI-compatible",
        summary="OpenAI, vLLM, Ollama, LM Studio, llama.cpp's server or any server speaking the OpenAI API.",
        defaults={
            "base_url": "https://api.openai.com/v1",
            "supports_streaming": True,
            "supports_tools": True,
            "max_tokens": 512,
        },
        help={
            "base_url": "The URL that ends in /v1: https://api.openai.com/v1, "
            "http://localhost:8000/v1 (vLLM), "
            "http://localhost:11434/v1 (Ollama), http://localhost:1234/v1 (LM Studio), "
            "http://localhost:8080/v1 (llama.cpp server). Private addresses are for admins only.",
            "model_id": "The name the server lists under /v1/models, like gpt-4o-mini or llama3.2:1b.",
            "api_key": "Leave empty for servers that need none (Ollama, LM Studio, llama.cpp).",
        },
    ),
}


def template_for(provider: str | None) -> ProviderTemplate:
    return PROVIDER_TEMPLATES.get(provider or "", PROVIDER_TEMPLATES[Provider.OPENAI_COMPATIBLE])
