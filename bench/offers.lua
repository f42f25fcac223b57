-- wrk: get offers (one interaction point, 3 offers) across the live sessions in sessions.txt,
-- each of wrk's two threads taking every other one (with the same list, both would ask for
-- the same session at the same moment, and each call would wait for the other's). The
-- requests are formatted once, up front: building each one in Lua per call cost wrk (which
-- shares the server's cores) three times its per-request work on /healthz.
local ids = {}
for line in io.lines(os.getenv("SESSIONS") or "sessions.txt") do ids[#ids + 1] = line end
local requests = {}
-- Counted in the main script, where setup runs; each thread's script gets its own index as
-- the global thread_index.
local threads = 0

function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

function init(args)
  local half = math.floor(#ids / 2)
  for n = 1, 10000 do
    local id = ids[((n * 7919) % half) * 2 + thread_index + 1]
    requests[n] = wrk.format("GET", "/v1/sessions/" .. id .. "/offers?ip=ip" .. (n % 100) .. "&count=3")
  end
end

local n = 0
request = function()
  n = n % #requests + 1
  return requests[n]
end
