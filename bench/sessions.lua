-- wrk: starts COUNT sessions of the synthetic channel, for customers FIRST + i (modulo
-- CUSTOMERS when set), or with END=1 ends them; each of wrk's threads takes every other one
-- and stops once its last is answered (wrk drops a call in flight when it stops, and the
-- runtime drops a call whose caller has gone). With PREFIX, the sessions are PREFIX0 ..
-- PREFIX<COUNT-1>: the caller chooses session IDs (as Interact touchpoints do), so they are
-- known without reading a reply, and wrk starts 20,000 sessions a second where the Python
-- client it replaces managed under 300. Without PREFIX the runtime makes the IDs. wrk runs
-- for its whole duration even when its threads are done: give it enough (COUNT / 4,000
-- seconds is ample) and check the runtime's kairos_sessions_live afterwards.
local prefix = os.getenv("PREFIX")
local first = tonumber(os.getenv("FIRST") or "0")
local count = tonumber(os.getenv("COUNT"))
local customers = tonumber(os.getenv("CUSTOMERS") or "0")
local ending = os.getenv("END") == "1"
local threads = 0

function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

local i, answered, share, checked
function init(args)
  i = thread_index
  answered = 0
  share = math.floor((count - thread_index + 1) / 2)
  -- wrk calls the first thread's request() once to check it before sending anything.
  checked = thread_index ~= 0
end

response = function(status, headers, body)
  if body == "ok\n" then return end -- /healthz
  answered = answered + 1
  if answered >= share then wrk.thread:stop() end
end

request = function()
  -- Connections with nothing left to do wait for the last answers with a harmless call.
  if i >= count then return wrk.format("GET", "/healthz") end
  local this = i
  if checked then i = i + 2 end
  checked = true
  if ending then return wrk.format("DELETE", "/v1/sessions/" .. prefix .. this) end
  local customer = first + this
  if customers > 0 then customer = customer % customers end
  local id = prefix and ('"session_id":"' .. prefix .. this .. '",') or ""
  return wrk.format("POST", "/v1/sessions", { ["content-type"] = "application/json" },
    '{"channel":"synthetic",' .. id .. '"audience_id":{"customer_id":' .. customer .. '}}')
end
