"""Output shared by the verification commands: JSON on request, else a short readable summary."""

import json


def emit(command, result: dict, *, as_json: bool) -> None:
    """Print ``result`` as one JSON object (``--json``) or as ``key: value`` lines."""
    if as_json:
        command.stdout.write(json.dumps(result, ensure_ascii=False))
        return
    for key, value in result.items():
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        command.stdout.write(f"{key}: {text}")
