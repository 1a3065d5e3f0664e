-- Prepended to the scripts that read the time (admit, claim, reserve): the clock is Redis's
-- own, one clock for every machine, unless the last argument gives one in ms (tests do).
local now
if ARGV[#ARGV] ~= '' then
  now = tonumber(ARGV[#ARGV])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
