-- wrk: whole visits of the synthetic channel, each one `/v1/batch` call (start session with
-- its profile and segmentation, get offers for one interaction point, end session), for
-- customers 0..CUSTOMERS-1 in turn. The bodies are formatted once, up front (building them in
-- Lua per call would cost wrk, which shares the server's cores, more than the server).
local customers = tonumber(os.getenv("CUSTOMERS") or "10000")
local requests = {}
local threads = 0

function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

function init(args)
  for n = 1, 10000 do
    local customer = ((n * 7919) * 2 + thread_index) % customers
    local body = '{"commands":[{"start_session":{"channel":"synthetic","audience_id":{"customer_id":'
      .. customer .. '}}},{"get_offers":{"requests":[{"ip":"ip' .. (n % 100)
      .. '","count":3}]}},{"end_session":{}}]}'
    requests[n] = wrk.format("POST", "/v1/batch", { ["content-type"] = "application/json" }, body)
  end
end

local n = 0
request = function()
  n = n % #requests + 1
  return requests[n]
end
