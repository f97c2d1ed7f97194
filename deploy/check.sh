#!/usr/bin/env bash
# Checks of deploy/: the systemd units, the Prometheus scrape config, the
# alerting and recording rules, and their unit tests. Each check also runs on
# a deliberately broken copy and must fail there, so a check that cannot fail
# does not pass. Missing tools are failures, never skips.
#
#   deploy/check.sh all|systemd_verify|promtool_config|promtool_rules|rules_unit
#
# Needs systemd-analyze, systemd-sysusers, systemd-tmpfiles (Debian package
# systemd) and promtool (package prometheus); build.sh installs both.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/.." && pwd)
units=(ringpipe.service ringpipe-component@.service)
rules=$here/prometheus/ringpipe.rules.yml
rules_test=$here/prometheus/ringpipe.rules.test.yml

work=$(mktemp -d "${TMPDIR:-/tmp}/ringpipe-deploy-check.XXXXXX")
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

say() { printf '%s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
need() {
  command -v "$1" >/dev/null 2>&1 || fail "$1 not found: install the Debian package '$2' (build.sh deps does)"
}

# Runs "$@" expecting it to fail; it is a negative control, so success is the bug.
must_fail() {
  local what=$1
  shift
  if ("$@") >"$work/control.out" 2>&1; then
    cat "$work/control.out" >&2
    fail "negative control passed, so the check cannot catch it: $what"
  fi
  say "ok: catches $what"
}

# ---------------------------------------------------------------- systemd

# Copies unit $1 into directory $2, pointing /usr/bin/ringpipe at a placeholder
# executable there: verify insists that ExecStart's binary exists.
stage_unit() {
  local src=$1 dir=$2
  mkdir -p "$dir/bin"
  if [[ ! -x $dir/bin/ringpipe ]]; then
    printf '#!/bin/sh\nexit 0\n' >"$dir/bin/ringpipe"
    chmod 755 "$dir/bin/ringpipe"
  fi
  sed "s#/usr/bin/ringpipe#$dir/bin/ringpipe#g" "$src" >"$dir/$(basename "$src")"
  chmod 644 "$dir/$(basename "$src")"
}

# Every unit of the project, staged into one directory.
stage_units() {
  local u
  for u in "${units[@]}"; do stage_unit "$here/systemd/$u" "$1"; done
}

# systemd-analyze verify exits 0 on unknown keys and unparsable values (it
# only logs them), so any message about our files is a failure too.
verify_unit() {
  local path=$1 out rc=0
  out=$(systemd-analyze verify "$path" 2>&1) || rc=$?
  if ((rc != 0)) || grep -qi ringpipe <<<"$out"; then
    printf '%s\n' "$out" >&2
    printf 'systemd-analyze verify %s: exit %d\n' "$path" "$rc" >&2
    return 1
  fi
  if [[ -n $out ]]; then
    printf 'note (not about ringpipe): %s\n' "$out"
  fi
}

# Exposure score 0..100 as systemd-analyze security prints it x10; an
# unhardened service scores about 96, these units about 14.
security_unit() {
  systemd-analyze security --offline=true --threshold=25 "$1" >"$work/security.out" 2>&1 || {
    tail -n 3 "$work/security.out" >&2
    return 1
  }
}

# What the units promise the operator; read from the source files. Every
# line is checked (set -e is off under the callers' || and if).
has_line() {
  grep -Eqx -- "$2" "$1" || {
    printf '%s: no line matching ^%s$\n' "$1" "$2" >&2
    return 1
  }
}
assert_unit() {
  local f=$1 ok=0
  has_line "$f" 'User=ringpipe' || ok=1
  has_line "$f" 'KillSignal=SIGTERM' || ok=1
  has_line "$f" 'TimeoutStopSec=[0-9]+(s|min)?' || ok=1
  has_line "$f" 'Restart=on-failure' || ok=1
  has_line "$f" 'RestartPreventExitStatus=([0-9A-Z]+ )*78( [0-9A-Z]+)*' || ok=1
  has_line "$f" 'ProtectSystem=strict' || ok=1
  has_line "$f" 'ProtectHome=yes' || ok=1
  has_line "$f" 'PrivateTmp=yes' || ok=1
  has_line "$f" 'NoNewPrivileges=yes' || ok=1
  has_line "$f" 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' || ok=1
  has_line "$f" 'ReadWritePaths=-?/dev/shm/ringpipe' || ok=1
  # RemoveIPC (implied by DynamicUser) would delete the rings on every stop.
  has_line "$f" 'RemoveIPC=no' || ok=1
  if grep -Eq '^DynamicUser=(yes|true|1|on)$' "$f"; then
    printf '%s: DynamicUser implies RemoveIPC=yes\n' "$f" >&2
    ok=1
  fi
  case $(basename "$f") in
    ringpipe.service)
      has_line "$f" 'ExecStart=/usr/bin/ringpipe run /etc/ringpipe/pipeline.yaml' || ok=1
      # shellcheck disable=SC2016 # a literal $MAINPID, for systemd to expand
      has_line "$f" 'ExecReload=/bin/kill -HUP \$MAINPID' || ok=1
      ;;
    ringpipe-component@.service)
      has_line "$f" 'ExecStart=/usr/bin/ringpipe component %i --config /etc/ringpipe/pipeline.yaml' || ok=1
      ;;
  esac
  return "$ok"
}

# The ExecStartPre that makes /dev/shm/ringpipe, from unit $1, as a shell
# command for directory $2, owner $3 and group $4 (systemd's $$ and %% undone).
run_dir_step() {
  local line
  line=$(grep -E '^ExecStartPre=\+' "$1" | grep -F /dev/shm/ringpipe) || return 1
  line=${line#ExecStartPre=+}
  line=${line//\$\$/\$}
  line=${line//%%/%}
  line=${line//\/dev\/shm\/ringpipe/@DIR@}
  line=${line//ringpipe:ringpipe/$3:$4}
  line=${line//-g ringpipe/-g $4}
  line=${line//ringpipe/$3}
  printf '%s\n' "${line//@DIR@/$2}"
}

# /dev/shm is world-writable: the unit's step that makes the ring directory
# runs as root and must neither follow a symlink planted at its name nor
# adopt a directory that group or others may write. Returns 1 on failure.
check_run_dir_step() {
  local unit=$1 user=nobody group=nogroup d victim before cmd
  if [[ $(id -u) -ne 0 ]]; then
    user=$(id -un)
    group=$(id -gn)
  fi
  d=$(mktemp -d "$work/shm.XXXXXX")
  chmod 1777 "$d"
  victim=$d/victim
  mkdir "$victim"
  chmod 0755 "$victim"
  before=$(stat -c '%u:%g %a' "$victim")
  cmd=$(run_dir_step "$unit" "$d/ringpipe" "$user" "$group") || {
    printf '%s: no ExecStartPre=+ making /dev/shm/ringpipe\n' "$unit" >&2
    return 1
  }
  ln -s "$victim" "$d/ringpipe"
  if (eval "$cmd") >"$work/step.out" 2>&1; then
    printf '%s: ExecStartPre accepts a symlink at the ring directory\n' "$unit" >&2
    return 1
  fi
  if [[ $(stat -c '%u:%g %a' "$victim") != "$before" ]]; then
    printf '%s: ExecStartPre changed the target of a symlink at the ring directory (%s, was %s)\n' "$unit" \
      "$(stat -c '%u:%g %a' "$victim")" "$before" >&2
    return 1
  fi
  rm "$d/ringpipe"
  (eval "$cmd") >"$work/step.out" 2>&1 || {
    cat "$work/step.out" >&2
    printf '%s: ExecStartPre fails on a fresh ring directory\n' "$unit" >&2
    return 1
  }
  if [[ $(stat -c '%U %a %F' "$d/ringpipe") != "$user 700 directory" ]]; then
    printf '%s: ExecStartPre made %s, expected "%s 700 directory"\n' "$unit" \
      "$(stat -c '%U %a %F' "$d/ringpipe")" "$user" >&2
    return 1
  fi
  chmod 0777 "$d/ringpipe"
  if (eval "$cmd") >"$work/step.out" 2>&1; then
    printf '%s: ExecStartPre accepts a world-writable ring directory\n' "$unit" >&2
    return 1
  fi
  rm -rf "$d"
}

# Callers test the status, which turns set -e off here: chain explicitly.
check_units_in() {
  local dir=$1
  # A template is verified through an instance; the file beside it is used.
  verify_unit "$dir/ringpipe.service" &&
    verify_unit "$dir/ringpipe-component@statsd.service" &&
    security_unit "$dir/ringpipe.service" &&
    security_unit "$dir/ringpipe-component@statsd.service"
}

# sysusers and tmpfiles into a scratch root: the user exists, the ring directory is made.
check_sysusers_tmpfiles() {
  local r=$work/root
  mkdir -p "$r/etc"
  systemd-sysusers --root="$r" "$here/ringpipe.sysusers.conf" >"$work/sysusers.out" 2>&1 || {
    cat "$work/sysusers.out" >&2
    fail "systemd-sysusers rejects ringpipe.sysusers.conf"
  }
  local uid
  uid=$(awk -F: '$1 == "ringpipe" { print $3 }' "$r/etc/passwd")
  [[ -n $uid ]] || fail "systemd-sysusers made no ringpipe user"
  if [[ $(id -u) -eq 0 ]]; then
    systemd-tmpfiles --root="$r" --create "$here/ringpipe.tmpfiles.conf"
    [[ $(stat -c '%u %a' "$r/dev/shm/ringpipe") == "$uid 700" ]] ||
      fail "tmpfiles: /dev/shm/ringpipe is $(stat -c '%u %a' "$r/dev/shm/ringpipe"), expected $uid 700"
  else
    # Not root: cannot chown, so check the entry with the owner left as is.
    sed -E 's/ ringpipe ringpipe / - - /' "$here/ringpipe.tmpfiles.conf" >"$work/tmpfiles.conf"
    systemd-tmpfiles --root="$r" --create "$work/tmpfiles.conf"
    [[ $(stat -c '%a' "$r/dev/shm/ringpipe") == 700 ]] || fail "tmpfiles: /dev/shm/ringpipe not made 0700"
    say "note: not root, tmpfiles ownership not checked"
  fi
  say "ok: sysusers makes user ringpipe (uid $uid), tmpfiles makes /dev/shm/ringpipe"
}

systemd_verify() {
  need systemd-analyze systemd
  need systemd-sysusers systemd
  need systemd-tmpfiles systemd
  local u
  for u in "${units[@]}"; do
    [[ -f $here/systemd/$u ]] || fail "missing deploy/systemd/$u"
    assert_unit "$here/systemd/$u" || fail "deploy/systemd/$u lacks a required setting"
  done
  say "ok: units carry ExecStart, reload, stop, restart and hardening settings"

  local good=$work/units
  stage_units "$good"
  check_units_in "$good" || fail "systemd-analyze rejects the units"
  say "ok: systemd-analyze verify and security (exposure <= 2.5) pass for both units"

  # Negative controls: each kind of breakage must be caught by the checks above.
  local bad
  bad=$work/bad-key
  stage_units "$bad"
  sed -i 's/^Restart=on-failure$/Restart=on-failure\nRestartPreventExitStatuz=78/' "$bad/ringpipe.service"
  must_fail "a misspelt key" verify_unit "$bad/ringpipe.service"

  bad=$work/bad-value
  stage_units "$bad"
  sed -i 's/^ProtectSystem=strict$/ProtectSystem=stricter/' "$bad/ringpipe-component@.service"
  must_fail "an invalid value" verify_unit "$bad/ringpipe-component@statsd.service"

  bad=$work/bad-exec
  stage_units "$bad"
  sed -i "s#^ExecStart=$bad/bin/ringpipe#ExecStart=/nonexistent/ringpipe#" "$bad/ringpipe.service"
  must_fail "a missing executable" verify_unit "$bad/ringpipe.service"

  bad=$work/bad-sandbox
  stage_units "$bad"
  sed -i '/^# Sandbox\./,/^\[Install\]/{/^\[Install\]/!d}' "$bad/ringpipe.service"
  must_fail "a unit without its sandbox" security_unit "$bad/ringpipe.service"

  bad=$work/bad-restart
  mkdir -p "$bad"
  grep -v '^RestartPreventExitStatus=' "$here/systemd/ringpipe.service" >"$bad/ringpipe.service"
  must_fail "a unit that restarts on a bad config" assert_unit "$bad/ringpipe.service"

  bad=$work/bad-dynamic
  mkdir -p "$bad"
  sed 's/^User=ringpipe$/User=ringpipe\nDynamicUser=yes/' "$here/systemd/ringpipe-component@.service" \
    >"$bad/ringpipe-component@.service"
  must_fail "DynamicUser (removes the rings on stop)" assert_unit "$bad/ringpipe-component@.service"

  for u in "${units[@]}"; do
    check_run_dir_step "$here/systemd/$u" || fail "deploy/systemd/$u: unsafe ring directory step"
  done
  say "ok: the ring directory step refuses a planted symlink and a world-writable directory, makes it 0700"
  bad=$work/bad-install
  mkdir -p "$bad"
  sed -E 's#^ExecStartPre=\+.*/dev/shm/ringpipe.*$#ExecStartPre=+/usr/bin/install -d -o ringpipe -g ringpipe -m 0700 /dev/shm/ringpipe#' \
    "$here/systemd/ringpipe.service" >"$bad/ringpipe.service"
  must_fail "an install -d that follows a symlink" check_run_dir_step "$bad/ringpipe.service"

  check_sysusers_tmpfiles
}

# ---------------------------------------------------------------- prometheus

promtool_config() {
  need promtool prometheus
  local cfg=$here/prometheus/prometheus.yml
  promtool check config "$cfg"
  grep -Eq '^ *- job_name: ringpipe$' "$cfg" || fail "prometheus.yml: no job ringpipe (the rules select job=\"ringpipe\")"
  grep -Eq '^ *metrics_path: /metrics$' "$cfg" || fail "prometheus.yml: metrics_path is not /metrics"
  grep -Eq 'targets: \[.*:9102"?\]' "$cfg" || fail "prometheus.yml: no target on port 9102"
  grep -Eq '^ *- ringpipe\.rules\.yml$' "$cfg" || fail "prometheus.yml: does not load ringpipe.rules.yml"
  say "ok: prometheus.yml scrapes job ringpipe on :9102/metrics and loads the rules"

  local bad=$work/config-missing-rules
  mkdir -p "$bad"
  cp "$cfg" "$bad/prometheus.yml"
  must_fail "a config whose rule file is missing" promtool check config "$bad/prometheus.yml"
  bad=$work/config-bad-key
  mkdir -p "$bad"
  cp "$cfg" "$rules" "$bad/"
  sed -i 's/^ *scrape_timeout: .*/    scrape_timeout: 10s\n    scrape_timout: 10s/' "$bad/prometheus.yml"
  must_fail "a misspelt config key" promtool check config "$bad/prometheus.yml"
}

# Every ringpipe_* metric a rule reads must be one ringpipe serves: named in
# the source as "ringpipe_x" (exporter) or "x" (a stats segment entry, served
# as ringpipe_x{component=...}); histogram series by their family's name.
check_metric_names() {
  local file=$1 name base missing=0
  local -a srcs=("$root/exporters/src" "$root/ingest/src" "$root/processors/src" "$root/apps" "$root/common/src")
  while read -r name; do
    base=${name#ringpipe_}
    local found=0 cand
    for cand in "$base" "${base%_count}" "${base%_sum}" "${base%_bucket}"; do
      if grep -rqF -e "\"ringpipe_$cand\"" -e "\"$cand\"" "${srcs[@]}"; then
        found=1
        break
      fi
    done
    if ((found == 0)); then
      printf '%s: %s is not a metric ringpipe serves\n' "$file" "$name" >&2
      missing=1
    fi
  done < <(grep -v '^ *#' "$file" | grep -oE '\bringpipe_[a-z0-9_]+' | sort -u)
  return "$missing"
}

promtool_rules() {
  need promtool prometheus
  promtool check rules "$rules"
  check_metric_names "$rules" || fail "the rules read metrics ringpipe does not serve"
  say "ok: every ringpipe_* metric in the rules is served by ringpipe's source"

  local bad=$work/rules-bad-syntax.yml
  sed 's/ringpipe_ring_up == 0/ringpipe_ring_up === 0/' "$rules" >"$bad"
  must_fail "a rule that does not parse" promtool check rules "$bad"
  bad=$work/rules-bad-name.yml
  sed 's/increase(ringpipe_exporter_instance_changes_total/increase(ringpipe_component_restarts_total/' "$rules" >"$bad"
  must_fail "a rule on a metric ringpipe does not serve" check_metric_names "$bad"
}

# Rewrites every expr of the rules of kind $1 (alert or record) to $2.
mutate_exprs() {
  awk -v kind="$1:" -v repl="$2" '
    /^ *- (alert|record): / { hit = ($2 == kind) }
    hit && /^ *expr:/ { match($0, /^ */); ind = RLENGTH; print substr($0, 1, ind) "expr: " repl; skip = 1; next }
    skip { match($0, /^ */); if ($0 !~ /^ *$/ && RLENGTH > ind) next; skip = 0 }
    { print }' "$rules"
}

# Runs the unit tests against mutated rules ($1 = awk output file) and
# requires a failure reported for every name in the list $2.
expect_reported() {
  local mutated=$1 what=$2
  shift 2
  local dir=$work/mutant
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$mutated" "$dir/ringpipe.rules.yml"
  cp "$rules_test" "$dir/"
  if (cd "$dir" && promtool test rules ringpipe.rules.test.yml) >"$work/mutant.out" 2>&1; then
    fail "rule tests pass with $what"
  fi
  local name bad=0
  for name in "$@"; do
    grep -qE "(alertname: $name,|expr: \"$name\")" "$work/mutant.out" || {
      printf 'no test fails for %s with %s\n' "$name" "$what" >&2
      bad=1
    }
  done
  ((bad == 0)) || fail "some rules are not covered by a test that would fail"
  say "ok: a test fails for every rule with $what"
}

rules_unit() {
  need promtool prometheus
  (cd "$here/prometheus" && promtool test rules ringpipe.rules.test.yml)

  local -a alerts records with_for
  mapfile -t alerts < <(sed -nE 's/^ *- alert: ([A-Za-z0-9_]+)$/\1/p' "$rules")
  mapfile -t records < <(sed -nE 's/^ *- record: ([A-Za-z0-9_:]+)$/\1/p' "$rules")
  mapfile -t with_for < <(awk '/^ *- (alert|record): / { n = $3 } /^ *for: / && n != "" { print n }' "$rules")
  ((${#alerts[@]} > 0 && ${#records[@]} > 0)) || fail "no alerts or records found in $rules"

  # Each alert has a test where it fires and one where it stays silent.
  local a
  for a in "${alerts[@]}"; do
    awk -v a="$a" '
      /^ *alertname: / { cur = $2 }
      /^ *exp_alerts: \[\]/ { if (cur == a) silent = 1; next }
      /^ *exp_alerts:$/ { if (cur == a) fires = 1 }
      END { exit !(silent && fires) }' "$rules_test" ||
      fail "$a: needs a test where it fires and one where it does not"
  done
  say "ok: ${#alerts[@]} alerts each tested firing and silent"

  mutate_exprs alert 'vector(0) > 1' >"$work/never.yml"
  expect_reported "$work/never.yml" "alerts that never fire" "${alerts[@]}"
  # Without `for`, an alert fires at once: its silent test before `for` ends must see it.
  sed -E '/^ *for: /d' "$rules" >"$work/nofor.yml"
  expect_reported "$work/nofor.yml" "every 'for' removed" "${with_for[@]}"
  mutate_exprs record 'vector(0)' >"$work/zero.yml"
  expect_reported "$work/zero.yml" "recording rules that record 0" "${records[@]}"
}

case ${1:-all} in
  systemd_verify) systemd_verify ;;
  promtool_config) promtool_config ;;
  promtool_rules) promtool_rules ;;
  rules_unit) rules_unit ;;
  all)
    systemd_verify
    promtool_config
    promtool_rules
    rules_unit
    ;;
  *)
    echo "usage: $0 all|systemd_verify|promtool_config|promtool_rules|rules_unit" >&2
    exit 2
    ;;
esac
say "PASS: deploy check ${1:-all}"
