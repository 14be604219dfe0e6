-- stick.lua - wrk script for bench/stick.sh (issue 19's stick-table benchmark).
-- Each request carries `x-key: k<N>`, N counting 0, 1, ... STICK_KEYS-1 and then
-- starting over. wrk's connections take the next key whenever they send, so the
-- keys are spread across them. (Each wrk thread has its own count; stick.sh runs
-- one thread, -t1.)
--   STICK_KEYS  distinct keys (100000)
--   STICK_ONCE  when set (non-empty): wrk stops once it has had STICK_KEYS
--               responses, so that each key has been sent once (the memory fill)
--   STICK_PREFIX  what the keys start with ("k"; bench/peers.sh writes others)
local keys = tonumber(os.getenv("STICK_KEYS") or "") or 100000
local once = (os.getenv("STICK_ONCE") or "") ~= ""
local prefix = os.getenv("STICK_PREFIX") or "k"
local head, n, responses

function init()
  -- wrk.format gives the request of the command line's URL (method, path, Host)
  -- ending with its blank line; the key header goes before that line.
  local plain = wrk.format()
  head = plain:sub(1, #plain - 2) .. "x-key: " .. prefix
  n, responses = 0, 0
end

function request()
  local r = head .. n .. "\r\n\r\n"
  n = n + 1
  if n == keys then n = 0 end
  return r
end

if once then
  function response()
    responses = responses + 1
    if responses >= keys then wrk.thread:stop() end
  end
end
