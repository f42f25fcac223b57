-- wrk: every get offers followed, on the same connection, by the contact event that logs
-- the offers it returned (acknowledged only once on disk).
local ids = {}
for line in io.lines(os.getenv("SESSIONS") or "sessions.txt") do ids[#ids + 1] = line end
local n = 0
local pending = {}
request = function()
  n = n + 1
  local slot = n % 2
  if slot == 1 then
    local id = ids[(n * 7919) % #ids + 1]
    last = id
    return wrk.format("GET", "/v1/sessions/" .. id .. "/offers?ip=ip" .. (n % 100) .. "&count=3")
  end
  return wrk.format("POST", "/v1/sessions/" .. last .. "/events", { ["content-type"] = "application/json" }, '{"event":"offer_shown"}')
end
