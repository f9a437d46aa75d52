#!/bin/sh
# run.sh: the body of `make fuzz`: runs each libFuzzer target of
# build-fuzz/fuzz/ for SECONDS seconds, one after the other, on its corpus
# (build-fuzz/corpus/T, kept between runs), its seeds (tests/fuzz/seeds/T,
# tests/fuzz/regress/T and seeds made here from ../shared/corpus and the
# repository's own files into build-fuzz/seeds/T) with its dictionary; then
# prints execs, cov and ft per target and exits 1 if any target crashed
# (the input is kept in build-fuzz/crashes/T/).
#
# usage: sh tests/fuzz/run.sh SECONDS TARGET...
set -u
secs=$1
shift
B=build-fuzz
SHARED=../shared/corpus
mkdir -p "$B/logs"

# Copies the files given into $B/seeds/$t, named after their paths.
seed() {
    for f in "$@"; do
        [ -f "$f" ] && cp "$f" "$B/seeds/$t/$(echo "$f" | tr '/' '_')"
    done
    return 0
}

# The front matter of the posts given (between the first two "---" lines).
seed_front_matter() {
    for f in "$@"; do
        [ -f "$f" ] && awk 'NR == 1 && $0 != "---" { exit } NR > 1 && $0 == "---" { exit } NR > 1' "$f" \
            >"$B/seeds/$t/fm_$(echo "$f" | tr '/' '_')"
    done
    return 0
}

make_seeds() {
    rm -rf "$B/seeds/$t"
    mkdir -p "$B/seeds/$t"
    posts=$(find "$SHARED/posts" "$SHARED/bad" "$SHARED/seed" -type f \( -name '*.md' -o -name '*.txt' \) 2>/dev/null)
    configs="config/nashra.example.yaml contrib/example/nashra.yaml"
    case $t in
    post) seed $posts $(find contrib/example/content -type f 2>/dev/null) ;;
    config) seed $configs ;;
    yaml) seed $configs; seed_front_matter $posts ;;
    html2text) seed $(find tests/golden -name '*.html') "$SHARED/posts/2024/raw-html.md" ;;
    mustache)
        # the templates of the official spec tests, when r-cran-whisker is there
        for j in /usr/lib/R/site-library/whisker/specs/*.json; do
            [ -f "$j" ] && python3 -c '
import json, sys
try:
    tests = json.load(open(sys.argv[1]))["tests"]
except ValueError:  # one file of the package is not valid JSON
    sys.exit(0)
for i, t in enumerate(tests):
    open("%s/%s_%d" % (sys.argv[2], sys.argv[1].split("/")[-1], i), "w").write(t["template"])
' "$j" "$B/seeds/$t"
        done
        ;;
    timefmt)
        for f in $posts; do
            sed -n 's/^\(date\|updated\): *"\{0,1\}\([^"]*\)"\{0,1\} *$/\2/p' "$f"
        done | sort -u | awk -v d="$B/seeds/$t" '{ print > (d "/date_" NR) }'
        ;;
    esac
}

max_len() {
    case $1 in
    post | html2text | dsn) echo 16384 ;;
    httpsig) echo 12288 ;;
    config | yaml | csv) echo 8192 ;;
    http_path) echo 5000 ;;
    mustache | mime) echo 4096 ;;
    ap | form) echo 2048 ;;
    inbox) echo 8192 ;;
    timefmt) echo 64 ;;
    *) echo 4096 ;;
    esac
}

failed=0
results=""
for t in "$@"; do
    mkdir -p "$B/corpus/$t" "$B/crashes/$t"
    make_seeds
    dirs="$B/corpus/$t $B/seeds/$t"
    for d in tests/fuzz/seeds/$t tests/fuzz/regress/$t; do
        [ -d "$d" ] && dirs="$dirs $d"
    done
    dict=""
    [ -f "tests/fuzz/dict/$t.dict" ] && dict="-dict=tests/fuzz/dict/$t.dict"
    log="$B/logs/$t.log"
    echo "fuzz $t: ${secs}s (log: $log)"
    # shellcheck disable=SC2086
    "$B/fuzz/fuzz_$t" -max_total_time="$secs" -max_len="$(max_len "$t")" $dict \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$B/crashes/$t/" $dirs </dev/null >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    crash=$(find "$B/crashes/$t" -type f | head -n 1)
    if [ $rc -ne 0 ] || [ -n "$crash" ]; then
        status="CRASH ${crash:-see $log}"
        failed=1
        tail -n 30 "$log"
    else
        status=ok
    fi
    results="$results$(printf '%-10s %8s %12s %7s %7s  %s' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$status")
"
done

echo
echo "fuzz summary ($(date -u +%Y-%m-%dT%H:%MZ)):"
printf '%-10s %8s %12s %7s %7s  %s\n' target seconds execs cov ft result
printf '%s' "$results"
exit $failed
