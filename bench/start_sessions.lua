-- wrk: start sessions for synthetic customers, one per request (memory measurements).
local n = 0
request = function()
  n = n + 1
  local body = '{"channel":"synthetic","audience_id":{"customer_id":' .. (n % 5000) .. '}}'
  return wrk.format("POST", "/v1/sessions", { ["content-type"] = "application/json" }, body)
end
