-- wrk: every get offers followed, on the same connection, by the contact event that logs
-- the offers it returned (acknowledged only once on disk). Requests are formatted up front,
-- as in offers.lua.
local ids = {}
for line in io.lines(os.getenv("SESSIONS") or "sessions.txt") do ids[#ids + 1] = line end
local requests = {}
for n = 1, 10000 do
  local id = ids[(n * 7919) % #ids + 1]
  requests[#requests + 1] = wrk.format("GET", "/v1/sessions/" .. id .. "/offers?ip=ip" .. (n % 100) .. "&count=3")
  requests[#requests + 1] = wrk.format("POST", "/v1/sessions/" .. id .. "/events",
    { ["content-type"] = "application/json" }, '{"event":"offer_shown"}')
end
local n = 0
request = function()
  n = n % #requests + 1
  return requests[n]
end
