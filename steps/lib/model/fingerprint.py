"""What makes two refit models the same model: the data they saw, their family and final
parameters, and the code and pinned libraries that trained them, hashed into one fingerprint.
`package` registers a model only if no version of the registered model has its fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from steps.lib.names import PROJECT_DIR


def project_code_digest(root: Path = PROJECT_DIR) -> str:
    """sha256 over every `*.py` under `root/steps`: sorted relative paths and their bytes, so a
    changed, added, removed or renamed module changes the digest."""
    digest = hashlib.sha256()
    steps_dir = root / "steps"
    for path in sorted(steps_dir.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        relative = path.relative_to(root).as_posix().encode()
        content = path.read_bytes()
        # lengths first: no concatenation of one (path, content) list can equal another's
        digest.update(f"{len(relative)}:{len(content)}:".encode() + relative + content)
    return digest.hexdigest()


def requirement_pins(requirements_text: str) -> list[str]:
    """The pins of a requirements.txt, comments and blank lines dropped, sorted."""
    lines = (line.split("#", 1)[0].strip() for line in requirements_text.splitlines())
    return sorted(line for line in lines if line)


def model_fingerprint(*, data: dict[str, object], family: str, params: dict[str, object],
                      code: str, requirements: list[str]) -> str:
    """sha256 of one canonical JSON document of everything that determines the fitted model.

    `data` describes the data (the prepare run's digest of the table, the split seed and digests
    of the splits: the same table split another way is other data); `params` are the final
    parameters the model was refit with."""
    document = {"data": data, "family": family, "params": params, "code": code, "requirements": requirements}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
