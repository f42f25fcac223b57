-- wrk: get offers (one interaction point, 3 offers) across the live sessions in sessions.txt.
local ids = {}
for line in io.lines(os.getenv("SESSIONS") or "sessions.txt") do ids[#ids + 1] = line end
local n = 0
request = function()
  n = n + 1
  local id = ids[(n * 7919) % #ids + 1]
  return wrk.format("GET", "/v1/sessions/" .. id .. "/offers?ip=ip" .. (n % 100) .. "&count=3")
end
