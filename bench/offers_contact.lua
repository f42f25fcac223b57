-- wrk: get offers, then the contact event that logs the offers it returned (acknowledged
-- only once on disk), once per session in SESSIONS: each pair is a visit of its own, so the
-- channel's contact cap per visit never turns an event into a no-op. Requests are formatted
-- up front, as in offers.lua; each of wrk's two threads takes every other session.
--
-- wrk's request() belongs to a thread, not to a connection, and its connections take turns:
-- a session's event sent right after its get offers would go out on another connection
-- while the get offers is still under way, and then log nothing. So each get offers is
-- followed by the event of the session LAG get offers before (default 64, four times a
-- thread's 16 connections at 32), whose answer is in by then; only a thread's first LAG
-- events come before their get offers.
local ids = {}
for line in io.lines(os.getenv("SESSIONS") or "sessions.txt") do ids[#ids + 1] = line end
local lag = tonumber(os.getenv("LAG") or "64")
local requests = {}
-- Counted in the main script, where setup runs; each thread's script gets its own index as
-- the global thread_index (a local of that name here would hide it, and both threads would
-- then take the same sessions).
local threads = 0

function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

function init(args)
  local mine = {}
  for i = 1 + thread_index, #ids, 2 do mine[#mine + 1] = i end
  for k, i in ipairs(mine) do
    local earlier = ids[mine[(k - 1 - lag) % #mine + 1]]
    requests[#requests + 1] = wrk.format("GET", "/v1/sessions/" .. ids[i] .. "/offers?ip=ip" .. (i % 100) .. "&count=3")
    requests[#requests + 1] = wrk.format("POST", "/v1/sessions/" .. earlier .. "/events",
      { ["content-type"] = "application/json" }, '{"event":"offer_shown"}')
  end
end

local n = 0
request = function()
  n = n % #requests + 1
  return requests[n]
end
