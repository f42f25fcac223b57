-- wrk: get offers, then the contact event that logs the offers it returned (acknowledged
-- only once on disk), once per session in SESSIONS: each pair is a visit of its own, so the
-- channel's contact cap per visit never turns an event into a no-op. Requests are formatted
-- up front, as in offers.lua; each of wrk's two threads takes every other session.
local ids = {}
for line in io.lines(os.getenv("SESSIONS") or "sessions.txt") do ids[#ids + 1] = line end
local requests = {}
local thread_index = 0

function setup(thread)
  thread:set("thread_index", thread_index)
  thread_index = thread_index + 1
end

function init(args)
  for i = 1 + thread_index, #ids, 2 do
    requests[#requests + 1] = wrk.format("GET", "/v1/sessions/" .. ids[i] .. "/offers?ip=ip" .. (i % 100) .. "&count=3")
    requests[#requests + 1] = wrk.format("POST", "/v1/sessions/" .. ids[i] .. "/events",
      { ["content-type"] = "application/json" }, '{"event":"offer_shown"}')
  end
end

local n = 0
request = function()
  n = n % #requests + 1
  return requests[n]
end
