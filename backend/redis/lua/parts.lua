-- Shared by the scripts that read an in-flight record or give units back or take them
-- (prepended to them at load): parts "<bucket>:<units>,..." as a list of {bucket, units}; a bare
-- bucket number (a record written before parts existed) holds all of qty.
local function parse_parts(s, qty)
  local out = {}
  if not string.find(s, ':', 1, true) then
    out[1] = {tonumber(s), tonumber(qty)}
    return out
  end
  for b, q in string.gmatch(s, '(%d+):(%d+)') do
    out[#out + 1] = {tonumber(b), tonumber(q)}
  end
  return out
end

-- The highest bucket of parts, or -1.
local function max_bucket(parts)
  local m = -1
  for _, p in ipairs(parts) do
    if p[1] > m then m = p[1] end
  end
  return m
end

-- Units came back to the item of meta key m: clear its sold-out marker and, when it
-- was set, announce on sk:stock that the item sells again.
local function announce_stock(m)
  if redis.call('DEL', (string.gsub(m, ':meta$', ':soldout'))) == 1 then
    local a, i = string.match(m, '{a(%d+):i(%d+)}')
    redis.call('PUBLISH', 'sk:stock', 'stock ' .. a .. ' ' .. i)
  end
end

-- Takes an order's qty units (parts ps) that a load counted as unsold: from its parts'
-- counters, then from any, as many as there are. counter(b) is bucket b's key of nb.
local function take_units(counter, nb, ps, qty)
  local left = tonumber(qty)
  local function take(k, most)
    local got = math.min(tonumber(redis.call('GET', k) or '0'), most, left)
    if got > 0 then
      redis.call('DECRBY', k, got)
      left = left - got
    end
  end
  for _, p in ipairs(parse_parts(ps, qty)) do
    if p[1] < nb then take(counter(p[1]), p[2]) end
  end
  for b = 0, nb - 1 do take(counter(b), left) end
end
