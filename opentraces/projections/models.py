"""Model names in the form opentraces-schema documents: ``provider/model-name``.

Agents write them differently: Claude Code ``claude-opus-4-8``, Codex CLI
``gpt-5.3-codex`` (provider in the session meta), Pi ``openai-codex/gpt-5.5``
(its own provider ids). The TraceRecord gets one form for all of them: a
canonical provider, a slash, the model as the agent named it. A name whose
provider cannot be told is kept as written. Pure; used by the fold only, so
events keep what the session said.
"""

from __future__ import annotations

# agents' provider ids -> the provider
PROVIDERS = {
    "openai-codex": "openai", "openai-responses": "openai", "azure-openai": "azure", "openai": "openai",
    "anthropic": "anthropic", "claude": "anthropic", "google": "google", "gemini": "google",
    "google-gemini": "google", "google-vertex": "google", "vertex": "google", "xai": "xai", "x-ai": "xai",
    "mistral": "mistral", "deepseek": "deepseek", "meta": "meta", "groq": "groq", "openrouter": "openrouter",
    "amazon-bedrock": "bedrock", "bedrock": "bedrock", "ollama": "ollama",
}
# model name prefixes -> the provider, for names without one
PREFIXES = (
    ("claude", "anthropic"), ("gpt-", "openai"), ("chatgpt", "openai"), ("o1", "openai"), ("o3", "openai"),
    ("o4", "openai"), ("codex-", "openai"), ("gemini", "google"), ("gemma", "google"), ("grok", "xai"),
    ("llama", "meta"), ("mistral", "mistral"), ("mixtral", "mistral"), ("codestral", "mistral"),
    ("deepseek", "deepseek"),
)


def schema_model(name: str | None) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    if "/" in name:
        provider, model = name.split("/", 1)
        return f"{PROVIDERS.get(provider.lower(), provider.lower())}/{model}"
    low = name.lower()
    for prefix, provider in PREFIXES:
        if low.startswith(prefix) and (len(low) == len(prefix) or not low[len(prefix)].isalpha() or prefix.endswith("-")):
            return f"{provider}/{name}"
    return name
