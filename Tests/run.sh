#!/usr/bin/env bash
# Runs every test of a release build (`swift build -c release --build-tests` first), in three
# invocations so that slow suites cannot starve the others:
#  1. everything but the server suites, in parallel (the in-process training tests hold both
#     cores and Swift's cooperative threads for minutes);
#  2. the server suites (live HTTP servers whose test client gives each request 15 s);
#  3. the fine-tuning jobs run in graftd processes on the real model (they train on both cores).
set -euo pipefail
cd "$(dirname "$0")/.."
swift test -c release --skip-build --skip ServerTests
swift test -c release --skip-build --filter ServerTests --skip JobProcessTests
swift test -c release --skip-build --filter JobProcessTests
