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
check("the repeated prompt's keys and values were reused (usage.prompt_tokens_details.cached_tokens)",
      r.usage.prompt_tokens_details.cached_tokens == 0
      and again.usage.prompt_tokens_details.cached_tokens == again.usage.prompt_tokens - 1)

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

# Files and fine-tuning jobs.
import time

rows = "".join('{"messages": [{"role": "user", "content": "Colour %d?"}, {"role": "assistant", "content": "Blue."}]}\n' % i
               for i in range(8))
f = client.files.create(file=("train.jsonl", rows.encode()), purpose="fine-tune")
check("files.create", f.object == "file" and f.filename == "train.jsonl" and f.bytes == len(rows) and f.status == "processed")
check("files.retrieve", client.files.retrieve(f.id).id == f.id)
check("files.content", client.files.content(f.id).read() == rows.encode())
g = client.files.create(file=("other.jsonl", rows.encode()), purpose="fine-tune")
check("files.list auto-paginates with limit and after", [x.id for x in client.files.list(limit=1)] == [g.id, f.id])
check("files.list(order='asc')", [x.id for x in client.files.list(order="asc")] == [f.id, g.id])
check("files.delete", client.files.delete(g.id).deleted)
try:
    client.files.create(file=("empty.jsonl", b""), purpose="fine-tune")
    check("an empty file raises BadRequestError", False)
except openai.BadRequestError as e:
    check("an empty file raises BadRequestError", e.param == "file")

job = client.fine_tuning.jobs.create(model=base, training_file=f.id, suffix="sdk", seed=3,
                                     method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
                                     extra_body={"lora": {"rank": 4, "target_modules": ["q_proj", "v_proj"]}})
check("fine_tuning.jobs.create", job.object == "fine_tuning.job" and job.status in ("validating_files", "queued", "running"))
check("the job shows the values used", job.hyperparameters.n_epochs == 2 and job.hyperparameters.batch_size == 4)
while job.status not in ("succeeded", "failed", "cancelled"):
    time.sleep(0.05)
    job = client.fine_tuning.jobs.retrieve(job.id)
check("the job succeeds with a fine-tuned model", job.status == "succeeded" and job.fine_tuned_model == "default/sdk@1")
events = list(client.fine_tuning.jobs.list_events(job.id, limit=3))
check("list_events auto-paginates", len(events) > 3 and events[0].message == "The job has successfully completed")
check("metrics events carry the step", any(e.type == "metrics" and e.data["step"] == 4 for e in events))
checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
check("checkpoints.list", [c.step_number for c in checkpoints] == [4, 2] and checkpoints[0].metrics.train_loss is not None)
many = client.files.create(file=("many.jsonl", (rows * 8).encode()), purpose="fine-tune")
second = client.fine_tuning.jobs.create(model=base, training_file=many.id, hyperparameters={"n_epochs": 50, "batch_size": 1})
check("jobs.list auto-paginates", [j.id for j in client.fine_tuning.jobs.list(limit=1)] == [second.id, job.id])
cancelled = client.fine_tuning.jobs.cancel(second.id)
check("fine_tuning.jobs.cancel", cancelled.status == "cancelled")
try:
    client.fine_tuning.jobs.cancel(second.id)
    check("cancelling a finished job raises ConflictError at once", False)
except openai.ConflictError as e:
    check("cancelling a finished job raises ConflictError at once", e.status_code == 409)
answer = client.chat.completions.create(model=job.fine_tuned_model, messages=[{"role": "user", "content": "Colour 1?"}],
                                        max_tokens=3)
check("the fine-tuned model serves", answer.object == "chat.completion")
try:
    client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=f.id)
    check("an unknown base model raises NotFoundError", False)
except openai.NotFoundError as e:
    check("an unknown base model raises NotFoundError", e.param == "model")
print("all SDK checks passed")
