#!/usr/bin/env bash
# One coverage-guided fuzz campaign with AFL++ (Debian's afl++) and SharpFuzz:
#   ./scripts/fuzz.sh TARGET [SECONDS]        TARGET: vhost-user, virtqueue, connect, config; default 600 s
#   FUZZ_EXECS=1000000 ./scripts/fuzz.sh TARGET 7200    stop after about that many executions (or the time)
# Builds fuzz/Vsock.Fuzz into .cache/fuzz/build, instruments the code under test there with sharpfuzz (the
# dotnet tool in .config/dotnet-tools.json), runs afl-fuzz niced on fuzz/corpus/TARGET with findings in
# .cache/fuzz/TARGET (started afresh each run), and prints what AFL++ counted. Replay a finding with
#   dotnet fuzz/Vsock.Fuzz/bin/Release/net10.0/Vsock.Fuzz.dll TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."

targets="vhost-user virtqueue connect config"
target=${1:-}
seconds=${2:-600}
if [[ ! " $targets " =~ " $target " ]] || [[ ! "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 TARGET [SECONDS]   (TARGET: ${targets// /, })" >&2
  exit 2
fi

./scripts/setup.sh
dotnet tool restore >/dev/null

build=.cache/fuzz/build
out=.cache/fuzz/$target
rm -rf "$build" "$out"
mkdir -p "$build"
dotnet publish fuzz/Vsock.Fuzz -c Release -o "$build" -nologo -clp:ErrorsOnly >/dev/null
# Coverage comes from these assemblies only: our device and launcher code, and the YAML and command-line
# parsers the configuration target goes through. The harness itself stays uninstrumented.
for assembly in Vsock.Device.dll vhost-device-vsock.dll YamlDotNet.dll System.CommandLine.dll; do
  dotnet sharpfuzz "$build/$assembly" >/dev/null
done

dict=()
[ -f "fuzz/dictionaries/$target.dict" ] && dict=(-x "fuzz/dictionaries/$target.dict")
limit=()
[ -n "${FUZZ_EXECS:-}" ] && limit=(-E "$FUZZ_EXECS")

# dotnet is not an AFL-instrumented binary (SharpFuzz speaks the fork-server protocol from managed code):
# AFL_SKIP_BIN_CHECK. In a container: no CPU governor to check, no core_pattern to change, no core to pin
# (the machine is shared). -t: a run over 2 s is a hang; the first run of a process includes JIT compilation.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
export AFL_NO_UI=1 AFL_FORKSRV_INIT_TMOUT=60000
log=.cache/fuzz/$target.log
echo "fuzz.sh: $target for ${seconds}s${FUZZ_EXECS:+ or $FUZZ_EXECS executions}; AFL++ log in $log" >&2
status=0
nice -n 19 afl-fuzz -i "fuzz/corpus/$target" -o "$out" -t 2000 -m none -V "$seconds" "${limit[@]}" "${dict[@]}" \
  -- dotnet "$build/Vsock.Fuzz.dll" "$target" >"$log" 2>&1 || status=$?

stats=$out/default/fuzzer_stats
if [ ! -f "$stats" ]; then
  tail -n 20 "$log" >&2
  echo "fuzz.sh: afl-fuzz did not start (status $status)" >&2
  exit 1
fi
stat() { sed -n "s/^$1 *: //p" "$stats"; }
crashes=$(find "$out/default/crashes" -type f -name 'id:*' | wc -l)
hangs=$(find "$out/default/hangs" -type f -name 'id:*' | wc -l)
echo "target:     $target"
echo "executions: $(stat execs_done) in $(stat run_time) s ($(stat execs_per_sec) exec/s)"
echo "crashes:    $crashes"
echo "hangs:      $hangs"
echo "corpus:     $(stat corpus_count) inputs ($(stat corpus_found) found by AFL++)"
echo "coverage:   $(stat edges_found) of $(stat total_edges) map edges, bitmap $(stat bitmap_cvg), stability $(stat stability)"
[ "$crashes" -gt 0 ] && echo "crash inputs: $out/default/crashes/"
[ "$hangs" -gt 0 ] && echo "hang inputs:  $out/default/hangs/"
exit 0
