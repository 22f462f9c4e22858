# Sourced by the load benchmarks: a decision key file and the wrk script that
# asks for a random customer of an N-customer generated plan per request.
#   random_customer_load DIR N   # sets $key, $keys (key file) and $lua (wrk script)
random_customer_load() {
  key="bench-decision-key-0123456789"
  keys="$1/bench-keys.json"
  lua="$1/random_customer.lua"
  printf '{"keys": [{"key": "%s", "role": "decision"}]}' "$key" >"$keys"
  cat >"$lua" <<LUA
-- A random customer of the plan per request.
local n = $2
wrk.headers["Authorization"] = "Bearer $key"
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
  return wrk.format("GET", string.format("/v1/customers/C%07d/offers", math.random(0, n - 1)))
end
LUA
}

# The customer ids of an N-customer generated plan (C0000000 to C<N-1>, seven
# digits) as a regular expression, for oha's --rand-regex-url. N must be a
# power of ten from 10 to 10,000,000 (any other N would ask for ids beyond
# the plan, answered 404 where the trivial handler answers 200).
customer_pattern() {
  case "$1" in
    10 | 100 | 1000 | 10000 | 100000 | 1000000 | 10000000) ;;
    *) echo "customer_pattern: $1 customers: a power of ten from 10 to 10000000 is needed" >&2; return 1 ;;
  esac
  local digits=$(( ${#1} - 1 )) zeros=""
  while [ $(( ${#zeros} + digits )) -lt 7 ]; do zeros="${zeros}0"; done
  printf '%s[0-9]{%d}' "$zeros" "$digits"
}
