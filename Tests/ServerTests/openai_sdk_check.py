"""The official openai SDK against a running graftd, over its Unix socket.

Usage: python openai_sdk_check.py SOCKET BASE_MODEL ADAPTER_ID
Prints one line per check and exits non-zero on the first failure.
"""
import sys

import httpx
import openai
from openai import OpenAI

socket_path, base, adapter = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(
    api_key="local",
    base_url="http://localhost/v1",
    http_client=httpx.Client(transport=httpx.HTTPTransport(uds=socket_path)),
    max_retries=0,
)


def check(name, condition):
    if not condition:
        print(f"FAIL {name}")
        sys.exit(1)
    print(f"ok {name}")


ids = [m.id for m in client.models.list()]
check("models.list names the base and the adapter", base in ids and adapter in ids)
check("models.retrieve with a slash in the id", client.models.retrieve(adapter).owned_by == adapter.split("/")[0])

c = client.completions.create(model=base, prompt="Once upon a time", max_tokens=5, temperature=0, seed=1)
check("completions.create", c.object == "text_completion" and c.usage.completion_tokens <= 5 and c.choices[0].finish_reason in ("stop", "length"))

r = client.chat.completions.create(
    model=adapter,
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
    max_completion_tokens=6, temperature=0.7, top_p=0.9, seed=3, stop=["\n\n"],
)
check("chat.completions.create", r.choices[0].message.role == "assistant" and isinstance(r.choices[0].message.content, str))
again = client.chat.completions.create(
    model=adapter,
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
    max_completion_tokens=6, temperature=0.7, top_p=0.9, seed=3, stop=["\n\n"],
)
check("a seed reproduces the answer", again.choices[0].message.content == r.choices[0].message.content)

whole = client.chat.completions.create(model=base, messages=[{"role": "user", "content": "Count to five"}],
                                       max_tokens=12, temperature=0)
stream = client.chat.completions.create(model=base, messages=[{"role": "user", "content": "Count to five"}],
                                        max_tokens=12, temperature=0, stream=True, stream_options={"include_usage": True})
pieces, usage, finish = [], None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
check("a stream adds up to the same answer", "".join(pieces) == whole.choices[0].message.content)
check("the stream ends with a finish reason and usage", finish in ("stop", "length") and usage is not None and usage.completion_tokens > 0)

mix = client.chat.completions.create(model=f"{adapter}:0.5+{adapter}:0.5", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
check("a weighted mix as the model", mix.object == "chat.completion")
ext = client.chat.completions.create(model=base, messages=[{"role": "user", "content": "hi"}], max_tokens=3,
                                     extra_body={"adapters": [{"id": adapter, "scale": 0.8}]})
check("the adapters extension", ext.object == "chat.completion")

try:
    client.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "x"}])
    check("an unknown model raises NotFoundError", False)
except openai.NotFoundError as e:
    check("an unknown model raises NotFoundError", e.status_code == 404 and e.param == "model")
try:
    client.chat.completions.create(model=base, messages=[{"role": "user", "content": "x"}], temperature=5)
    check("a bad parameter raises BadRequestError", False)
except openai.BadRequestError as e:
    check("a bad parameter raises BadRequestError", e.param == "temperature")
print("all SDK checks passed")
