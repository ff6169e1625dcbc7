#!/usr/bin/env python3
"""Reference renders of chat templates with Python jinja2, set up as Hugging Face transformers
sets it up for apply_chat_template (utils/chat_template_utils.py): an ImmutableSandboxedEnvironment
with trim_blocks and lstrip_blocks, the loopcontrols extension, a {% generation %} block that renders
its body, the globals raise_exception and strftime_now (at a fixed date here), dict and namespace,
and tojson as json.dumps(ensure_ascii=False).

usage: render_references.py TEMPLATES_DIR CONVERSATIONS_JSON OUTPUT_JSONL

Writes one JSON object per (template, conversation): {"template", "conversation", "text"} or, when
jinja2 raised, {"template", "conversation", "error", "error_type"}.
"""
import datetime
import json
import os
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_NOW = datetime.datetime(2024, 7, 26, 12, 0, 0)
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"


class GenerationBlock(Extension):
    """{% generation %}...{% endgeneration %} renders its body unchanged."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

    def _render_body(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return FIXED_NOW.strftime(fmt)


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = dict
    return env


def main():
    templates_dir, conversations_path, output_path = sys.argv[1:4]
    with open(conversations_path, encoding="utf-8") as f:
        conversations = json.load(f)
    env = make_environment()
    names = sorted(n for n in os.listdir(templates_dir) if n.endswith(".jinja"))
    with open(output_path, "w", encoding="utf-8") as out:
        for name in names:
            with open(os.path.join(templates_dir, name), encoding="utf-8") as f:
                source = f.read()
            for conversation in conversations:
                record = {"template": name, "conversation": conversation["name"]}
                try:
                    template = env.from_string(source)
                    record["text"] = template.render(
                        messages=conversation["messages"],
                        tools=conversation.get("tools"),
                        documents=None,
                        add_generation_prompt=conversation["add_generation_prompt"],
                        bos_token=BOS_TOKEN,
                        eos_token=EOS_TOKEN,
                        **conversation.get("variables", {}),
                    )
                except Exception as e:  # every failure is a reference outcome too
                    record["error"] = str(e)
                    record["error_type"] = type(e).__name__
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{len(names)} templates x {len(conversations)} conversations -> {output_path}")


if __name__ == "__main__":
    main()
