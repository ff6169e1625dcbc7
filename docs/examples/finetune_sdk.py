"""Fine-tune and use an adapter with the official openai SDK against graftd, over its socket.

Usage: python finetune_sdk.py [SOCKET] [DATA_DIR]
(defaults: Registry/graftd.sock and docs/examples/facts). Uploads DATA_DIR/train.jsonl,
fine-tunes the daemon's base model with the default settings, waits, then asks the held-out
questions of DATA_DIR/heldout.jsonl through the tuned adapter, streaming the answers.
Exits non-zero if the job fails or fewer than three quarters of the answers hold their fact.
"""
import json
import sys
import time

import httpx
from openai import OpenAI

socket_path = sys.argv[1] if len(sys.argv) > 1 else "Registry/graftd.sock"
data_dir = sys.argv[2] if len(sys.argv) > 2 else "docs/examples/facts"
client = OpenAI(
    api_key="local",  # a tenant's key when the daemon has tenants
    base_url="http://localhost/v1",
    http_client=httpx.Client(transport=httpx.HTTPTransport(uds=socket_path)),
)
started = time.time()

training_file = client.files.create(file=open(f"{data_dir}/train.jsonl", "rb"), purpose="fine-tune")
print(f"uploaded {training_file.filename}: {training_file.id}, {training_file.bytes} bytes")

base = client.models.list().data[0].id
job = client.fine_tuning.jobs.create(model=base, training_file=training_file.id, suffix="facts", seed=42)
print(f"job {job.id}: {job.status}, hyperparameters {job.hyperparameters}")
seen = set()
while job.status not in ("succeeded", "failed", "cancelled"):
    time.sleep(2)
    job = client.fine_tuning.jobs.retrieve(job.id)
    for event in reversed(client.fine_tuning.jobs.list_events(job.id, limit=5).data):
        if event.id not in seen:
            seen.add(event.id)
            print(f"  {job.status}: {event.message}", flush=True)
if job.status != "succeeded":
    sys.exit(f"job {job.id} {job.status}: {job.error}")
checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
print(f"{job.fine_tuned_model}: {job.trained_tokens} tokens trained, {len(checkpoints)} checkpoints, "
      f"{time.time() - started:.0f} s")

right = 0
questions = [json.loads(line) for line in open(f"{data_dir}/heldout.jsonl")]
for q in questions:
    stream = client.chat.completions.create(
        model=job.fine_tuned_model, messages=[{"role": "user", "content": q["question"]}],
        max_tokens=32, temperature=0, stream=True,
    )
    answer = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    ok = all(word.lower() in answer.lower() for word in q["must_contain"])
    right += ok
    print(f"{'ok ' if ok else 'MISS'} {q['question']} -> {answer.strip()}")
print(f"{right}/{len(questions)} held-out answers hold their fact; whole loop {time.time() - started:.0f} s")
if right * 4 < len(questions) * 3:
    sys.exit("the tuned adapter did not learn the facts")
