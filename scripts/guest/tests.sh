# Sourced by scripts/guest-run: run_tests runs the test binaries listed in
# RUN_DIR/bins (filtered by RUN_DIR/filters), under valgrind when VALGRIND=1, appends
# their output to RUN_DIR/tests.log, and writes "PASSED FAILED" to RUN_DIR/summary.

# The memcheck arguments every process gets (scripts/valgrind.args, shared with
# tests/harness/cli.rs, which runs each zrep under them), without comments.
valgrind_args() {
    sed -e 's/#.*//' -e '/^ *$/d' -e "s|=scripts/|=$here/scripts/|" "$here/scripts/valgrind.args"
}

# Filters that all name test binaries (tests/NAME.rs) select those binaries whole;
# otherwise they filter test names in every binary. Prints 1 or 0.
filters_name_binaries() {
    local f b found
    ((${#filters[@]})) || { echo 0; return; }
    for f in "${filters[@]}"; do
        found=0
        for b in "${bins[@]}"; do
            [[ $(basename "$b" | sed 's/-[0-9a-f]*$//') == "$f" ]] && found=1
        done
        ((found)) || { echo 0; return; }
    done
    echo 1
}

run_tests() {
    local bins filters vg=() only_bins passed=0 failed=0 bin name args out rc line p f
    mapfile -t bins <"$run_dir/bins"
    mapfile -t filters <"$run_dir/filters"
    if [[ $VALGRIND == 1 ]]; then
        # Every process logs to RUN_DIR/vg: the test binaries, and each zrep they start
        # (ZREP_VALGRIND, read by tests/harness/cli.rs), local or through ssh.
        mkdir -p "$run_dir/vg"
        export ZREP_VALGRIND=$run_dir/vg
        mapfile -t vg < <(valgrind_args)
        vg=(valgrind --error-exitcode=99 "${vg[@]}" "--log-file=$run_dir/vg/test.%p.log")
    fi
    only_bins=$(filters_name_binaries)
    : >"$run_dir/tests.log"
    for bin in "${bins[@]}"; do
        name=$(basename "$bin" | sed 's/-[0-9a-f]*$//')
        args=("${filters[@]}")
        if ((only_bins)); then
            printf '%s\n' "${filters[@]}" | grep -qx -- "$name" || continue
            args=()
        fi
        echo "--- $name"
        out=$("${vg[@]}" "$bin" --test-threads="${ZREP_TEST_THREADS:-4}" "${args[@]}" 2>&1)
        rc=$?
        printf '%s\n' "$out" >>"$run_dir/tests.log"
        printf '%s\n' "$out" | grep -E '^test .* (FAILED|ok)$|^test result|panicked|ERROR SUMMARY|definitely lost' | grep -v ' ok$' || true
        line=$(printf '%s\n' "$out" | grep '^test result:' | tail -1)
        p=$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$line")
        f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$line")
        if [[ -z $line ]]; then
            echo "$name: no test result line (exit $rc)"; failed=$((failed + 1))
        else
            passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
            if ((rc != 0 && ${f:-0} == 0)); then
                echo "$name: exit $rc with no failed test (valgrind errors?)"; failed=$((failed + 1))
            fi
        fi
    done
    if ((${#vg[@]})); then
        valgrind_summary || failed=$((failed + 1))
    fi
    destroy_leftover_pools
    echo "$passed $failed" >"$run_dir/summary"
}

# Campaign 5's figure: what memcheck saw over every process it ran. Fails on any
# invalid access or error.
valgrind_summary() {
    shopt -s nullglob
    local logs=("$run_dir"/vg/*.log) zlogs=("$run_dir"/vg/zrep.*.log) invalid lost errs line
    sum() { awk '{s += $1} END {print s + 0}'; }
    invalid=$(cat /dev/null "${logs[@]}" | grep -cE 'Invalid (read|write|free)|Mismatched free')
    lost=$(cat /dev/null "${logs[@]}" | sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' | tr -d , | sum)
    errs=$(cat /dev/null "${logs[@]}" | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' | sum)
    line="valgrind memcheck: ${#logs[@]} processes ($((${#logs[@]} - ${#zlogs[@]})) test binaries, ${#zlogs[@]} zrep runs), $invalid invalid reads/writes/frees, $lost bytes definitely lost, $errs errors"
    echo "$line"
    echo "(uninitialised-value checks off: valgrind does not model ZFS ioctls, so nvlists the kernel fills look uninitialised; zrep processes killed on purpose by the tests leave no summary)"
    mkdir -p "$here/target/guest/campaigns" && echo "RESULT: $line" >"$here/target/guest/campaigns/valgrind.txt"
    ((invalid + errs == 0))
}

# Pools a crashed test left behind must not outlive the run: only the harness's own
# (named zt<pid>x<n>, backed by a file in ZREP_TEST_DIR), never a pool of the host's
# that merely starts with "zt" (ZREP_TEST_ON_HOST=1 runs on real machines).
destroy_leftover_pools() {
    local pool
    for pool in $(zpool list -H -o name 2>/dev/null | grep -E '^zt[0-9]+x[0-9]+$'); do
        [[ -f $ZREP_TEST_DIR/$pool.img ]] && zpool status -P "$pool" 2>/dev/null |
            grep -qF "$ZREP_TEST_DIR/$pool.img" && zpool destroy -f "$pool" 2>/dev/null
    done
}
