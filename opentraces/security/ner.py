"""The ``privacy_filter`` tool: named-entity PII (person names, places) with presidio + spaCy.

It runs fully offline: the spaCy pipeline must already be installed (a
package such as ``en_core_web_lg``) or be a folder the user points to with
``security.privacy_filter.model``. Nothing is downloaded at run time (presidio
would fetch a missing model, so the pipeline is checked here first); without
presidio, spaCy or a pipeline the tool reports ``unavailable`` and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

ENTITIES = ("PERSON", "LOCATION", "NRP")
MIN_SCORE = 0.6
KIND = {"PERSON": "person_name", "LOCATION": "location", "NRP": "group_affiliation"}

Finder = Callable[[str], list[tuple[int, int, str]]]


def probe(model: str | None) -> tuple[str | None, str]:
    """(pipeline to load or None, reason). Cheap: imports nothing heavy when absent."""
    import importlib.util

    for mod in ("presidio_analyzer", "spacy"):
        if importlib.util.find_spec(mod) is None:
            return None, f"{mod.replace('_', '-')} is not installed (pip install presidio-analyzer spacy, plus a spaCy pipeline)"
    if model:
        if Path(model).expanduser().is_dir() or importlib.util.find_spec(model) is not None:
            return str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model, "configured pipeline"
        return None, f"security.privacy_filter.model = {model!r} is neither an installed spaCy package nor a folder"
    for name in ("en_core_web_lg", "en_core_web_md", "en_core_web_sm", "en_core_web_trf"):
        if importlib.util.find_spec(name) is not None:
            return name, "installed pipeline"
    return None, ("no spaCy pipeline is installed; install one (e.g. en_core_web_lg) or set "
                  "security.privacy_filter.model to a pipeline folder (never downloaded at run time)")


def load(model: str) -> Finder:
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    nlp = spacy.load(model)  # fails here, offline, if the pipeline is broken
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    engine.nlp = {"en": nlp}
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def find(text: str) -> list[tuple[int, int, str]]:
        if len(text) < 3 or not any(c.isupper() for c in text):
            return []
        res = analyzer.analyze(text=text, language="en", entities=list(ENTITIES))
        return [(r.start, r.end, KIND.get(r.entity_type, r.entity_type.lower())) for r in res if r.score >= MIN_SCORE]

    return find
