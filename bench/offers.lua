-- wrk: get offers (one interaction point, 3 offers) across the live sessions in sessions.txt.
-- The requests are formatted once, up front: building each one in Lua per call cost wrk
-- (which shares the server's cores) three times its per-request work on /healthz.
local ids = {}
for line in io.lines(os.getenv("SESSIONS") or "sessions.txt") do ids[#ids + 1] = line end
local requests = {}
for n = 1, 10000 do
  local id = ids[(n * 7919) % #ids + 1]
  requests[n] = wrk.format("GET", "/v1/sessions/" .. id .. "/offers?ip=ip" .. (n % 100) .. "&count=3")
end
local n = 0
request = function()
  n = n % #requests + 1
  return requests[n]
end
