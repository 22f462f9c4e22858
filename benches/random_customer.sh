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
