"""Stripe's request encoding: form fields with brackets for nesting (`metadata[key]=v`, `expand[]=x`)."""

import re
from typing import Any
from urllib.parse import parse_qsl

_PART = re.compile(r"\[([^\]]*)\]")


def parse(body: bytes | str) -> dict[str, Any]:
    text = body.decode() if isinstance(body, bytes) else body
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True):
        head = raw_key.split("[", 1)[0]
        parts = [head, *_PART.findall(raw_key[len(head) :])]
        node: Any = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = None if last else parts[index + 1]
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                child: Any = [] if following == "" else {}
                node.append(child)
                node = child
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if following == "" else {})
    return result
