#!/usr/bin/env bash
# The whole test suite, with all set-up, on a fresh Debian 12 machine:
#   ./scripts/test.sh
# Installs what is missing (scripts/setup.sh), builds the guest image for the QEMU end-to-end tests
# (cached under .cache/), builds the solution, publishes the single-file binary (scripts/publish.sh),
# checks the code style (.editorconfig, `dotnet format --verify-no-changes`), checks the packed
# test-harness library (scripts/check-package.sh) and runs every test project. Ends with one line
# "tests: N passed, N failed, N skipped" (and a failure status if the style or package check failed).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
./tests/e2e/guest/build-guest.sh

results=$(mktemp -d)
published=$(mktemp -d)
trap 'rm -rf "$results" "$published"' EXIT

dotnet build VsockActors.sln -c Release -nologo -clp:ErrorsOnly
# The single-file binary, as scripts/publish.sh makes it, for tests/Vsock.Launcher.Tests/Publish
# (about a minute; without the variable those tests publish it themselves).
VSOCK_PUBLISHED_BINARY=$(./scripts/publish.sh "$published")
export VSOCK_PUBLISHED_BINARY
status=0
# One code style: .editorconfig is the rule, `dotnet format VsockActors.sln` the fix. A difference
# fails the run but the tests still run, so one report shows both.
if ! dotnet format VsockActors.sln --verify-no-changes --no-restore; then
  echo "test.sh: files differ from .editorconfig; run: dotnet format VsockActors.sln" >&2
  status=1
fi
# The test-harness library as a user gets it: packed, restored from a feed by a copy of the example
# project outside the repository, its test run (scripts/check-package.sh).
./scripts/check-package.sh || status=$?
# -m:1: one test project at a time, so the QEMU tests' timing checks never compete with another
# project for the two cores.
dotnet test VsockActors.sln -c Release --no-build -nologo -m:1 \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" || status=$?

passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  n=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${n:-0}))
done
if [ "$passed" -eq 0 ] && [ "$status" -eq 0 ]; then
  echo "test.sh: no test ran" >&2
  status=1
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
