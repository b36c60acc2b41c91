"""Chat template oracle for Strata's tests: renders conversations with the families' Jinja chat
templates the way Hugging Face's apply_chat_template does (Jinja2, sandboxed, trim_blocks and
lstrip_blocks, the special tokens as variables).

    python3 chat_template.py IN.json OUT.json

IN.json: {"templates": {NAME: JINJA, ...}, "cases": [{"template": NAME, "bos_token": ...,
"messages": [{"role": ..., "content": ...}, ...], "add_generation_prompt": ...}, ...]}.
OUT.json receives one rendered string per case.

Jinja2 itself, not a re-implementation, because the templates lean on Python semantics that
look-alike engines get wrong (str.lstrip('\\n') strips only newlines; @huggingface/jinja 0.5
strips all whitespace). Python's jinja2 comes with Debian as python3-jinja2.
"""
import json
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python3 chat_template.py IN.json OUT.json\n")
        return 2
    with open(argv[0], encoding="utf-8") as f:
        job = json.load(f)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    compiled = {name: env.from_string(text) for name, text in job["templates"].items()}
    out = [
        compiled[c["template"]].render(messages=c["messages"], bos_token=c["bos_token"],
                                       add_generation_prompt=c["add_generation_prompt"])
        for c in job["cases"]
    ]
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
